"""Ensembles from the models that learning-rate tuning trains anyway.

*After* LREnsemble (Jin & Wu, arXiv 2410.07564), **not a reproduction of it.**
LREnsemble observes that tuning a network under different learning-rate
policies yields a pool of diverse models, records every model trained during
tuning, and picks high-quality ensembles from that pool with ensemble-selection
algorithms. Only its abstract and a third-party summary could be read: its
selection algorithms, their parameters and its combination rule could not be
consulted. This package therefore offers verifiable building blocks instead:

* combiners: soft voting (mean of member softmax) and plurality voting;
* the diversity metrics of Kuncheva & Whitaker (2003) as EnsembleBench's
  ``groupMetrics`` computes them, and EnsembleBench's "lower is more diverse"
  convention for them (:func:`focal_diversity_metrics`);
* three selectors, all run on a VALIDATION split (reporting on a test split is
  the caller's job, see :func:`evaluate_selection`):

  - :func:`exhaustive_selection`, the "brute force" selection that the
    third-party summary of LREnsemble names;
  - :func:`greedy_selection`, forward selection with replacement of Caruana et
    al. (2004);
  - :func:`focal_diversity_selection`, the focal-diversity selection of
    EnsembleBench (same group as LREnsemble; *not* confirmed to be what
    LREnsemble uses).

Inputs: a pool of ``M`` models' logits of shape ``(M, N, C)`` and integer
labels of shape ``(N,)``. Combiners and :func:`accuracy` are JAX functions
(traceable, usable under ``vmap``); diversity metrics and searches use NumPy,
vectorised over teams.

Decisions taken where the sources are silent or scale-dependent:

* Ties: every ``argmax`` (plurality vote, accuracy) takes the lowest class
  index; teams tie-break by validation NLL of the soft vote, then size
  (smaller first), then lexicographic order of member indices.
* Undefined metrics: Cohen's and Fleiss' kappa are 1 when chance agreement is
  1 (all raters predict one single class); the Q-statistic of a pair is 0 when
  its denominator is 0 (EnsembleBench's ``eps`` guard); generalized diversity
  is 0 when no member ever fails.
* Greedy selection hill-climbs validation accuracy by default, NLL breaking
  ties (see :func:`greedy_selection` for why).
* Focal-diversity selection, see that function's docstring.

References:
  Kuncheva & Whitaker, `Measures of Diversity in Classifier Ensembles and
  Their Relationship with the Ensemble Accuracy
  <https://doi.org/10.1023/A:1022859003006>`_, Machine Learning 51, 2003.

  Partridge & Krzanowski, Software diversity: practical statistics for its
  measurement and exploitation, Information and Software Technology 39, 1997.

  Caruana, Niculescu-Mizil, Crew & Ksikes, `Ensemble Selection from Libraries
  of Models <https://doi.org/10.1145/1015330.1015432>`_, ICML 2004.

  Wu, Liu, Xie, Chow & Wei, Boosting Ensemble Accuracy by Revisiting Ensemble
  Diversity Metrics, CVPR 2021; code: git-disl/EnsembleBench
  (``EnsembleBench/groupMetrics.py``, ``teamSelection.py``,
  ``demo/FocalDiversityBasedEnsembleSelection.ipynb``).

  Jin & Wu, `LREnsemble <https://arxiv.org/abs/2410.07564>`_, 2024.
"""

# Private modules, each importing only those listed before it: _combine and
# _diversity (leaves), _teams (pool checks, candidate teams, Selection),
# _select (exhaustive, greedy, evaluation) and _focal.
from autolrs_jax.ensemble._combine import accuracy
from autolrs_jax.ensemble._combine import negative_log_likelihood
from autolrs_jax.ensemble._combine import plurality_vote
from autolrs_jax.ensemble._combine import soft_vote
from autolrs_jax.ensemble._diversity import binary_disagreement
from autolrs_jax.ensemble._diversity import DIVERSITY_METRICS
from autolrs_jax.ensemble._diversity import fleiss_kappa
from autolrs_jax.ensemble._diversity import focal_diversity_metrics
from autolrs_jax.ensemble._diversity import generalized_diversity
from autolrs_jax.ensemble._diversity import kohavi_wolpert_variance
from autolrs_jax.ensemble._diversity import oracle_outputs
from autolrs_jax.ensemble._diversity import pairwise_cohen_kappa
from autolrs_jax.ensemble._diversity import predicted_labels
from autolrs_jax.ensemble._diversity import q_statistic
from autolrs_jax.ensemble._focal import focal_diversity_selection
from autolrs_jax.ensemble._select import evaluate_selection
from autolrs_jax.ensemble._select import exhaustive_selection
from autolrs_jax.ensemble._select import GREEDY_METRICS
from autolrs_jax.ensemble._select import greedy_selection
from autolrs_jax.ensemble._teams import DEFAULT_MAX_TEAMS
from autolrs_jax.ensemble._teams import Selection

__all__ = (
    "DIVERSITY_METRICS",
    "GREEDY_METRICS",
    "DEFAULT_MAX_TEAMS",
    "soft_vote",
    "plurality_vote",
    "accuracy",
    "negative_log_likelihood",
    "predicted_labels",
    "oracle_outputs",
    "pairwise_cohen_kappa",
    "q_statistic",
    "binary_disagreement",
    "fleiss_kappa",
    "kohavi_wolpert_variance",
    "generalized_diversity",
    "focal_diversity_metrics",
    "Selection",
    "exhaustive_selection",
    "greedy_selection",
    "focal_diversity_selection",
    "evaluate_selection",
)
