"""Ensembles from an LR-tuning pool: combiners, diversity metrics, selectors.

Expected numbers are worked out by hand from the definitions in the comments.
"""

import itertools
import math

import jax
import numpy as np
import pytest

from autolrs_jax import ensemble

# -----------------------------------------------------------------------------
# Combiners.
# -----------------------------------------------------------------------------


def test_soft_vote_is_mean_of_member_softmax():
  # Member 0: logits (0, 0) -> (1/2, 1/2). Member 1: (log 3, 0) -> (3/4, 1/4).
  logits = np.array([[[0.0, 0.0]], [[math.log(3.0), 0.0]]], np.float32)
  np.testing.assert_allclose(ensemble.soft_vote(logits), [[0.625, 0.375]],
                             rtol=1e-6)


def test_soft_vote_of_log_probabilities_averages_probabilities():
  probs = np.array([[[0.2, 0.8]], [[0.6, 0.4]]], np.float32)
  np.testing.assert_allclose(ensemble.soft_vote(np.log(probs)), [[0.4, 0.6]],
                             rtol=1e-6)


def _one_hot_logits(votes, num_classes):
  """Logits (M, N, C) whose argmax is ``votes`` (M, N)."""
  return np.eye(num_classes, dtype=np.float32)[np.asarray(votes)]


def test_plurality_vote_majority_and_lowest_index_ties():
  votes = [
      [0, 2, 2, 1],
      [0, 1, 2, 0],
      [1, 1, 0, 2],
  ]
  # Sample 0: 0,0,1 -> 0. Sample 1: 2,1,1 -> 1. Sample 2: 2,2,0 -> 2.
  # Sample 3: 1,0,2 -> three-way tie -> lowest class, 0.
  result = ensemble.plurality_vote(_one_hot_logits(votes, 3))
  np.testing.assert_array_equal(result, [0, 1, 2, 0])
  # Two members, 2 vs 1: tie -> 1.
  np.testing.assert_array_equal(
      ensemble.plurality_vote(_one_hot_logits([[2], [1]], 3)), [1])


def test_plurality_vote_repeats_weight_a_member():
  logits = _one_hot_logits([[2], [1], [1]], 3)
  np.testing.assert_array_equal(
      ensemble.plurality_vote(logits[np.array([0, 0, 1])]), [2])


def test_accuracy_of_probabilities_and_of_labels():
  labels = np.array([0, 1, 2, 1])
  probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8],
                    [0.2, 0.6, 0.2]])
  assert float(ensemble.accuracy(probs, labels)) == pytest.approx(0.75)
  assert float(ensemble.accuracy(np.array([0, 0, 0, 1]), labels)) == 0.5


def test_combiners_are_jit_compatible():
  logits = np.random.default_rng(0).normal(size=(3, 5, 4)).astype(np.float32)
  np.testing.assert_allclose(jax.jit(ensemble.soft_vote)(logits),
                             ensemble.soft_vote(logits), rtol=1e-6)
  np.testing.assert_array_equal(jax.jit(ensemble.plurality_vote)(logits),
                                ensemble.plurality_vote(logits))


# -----------------------------------------------------------------------------
# Diversity metrics: 3 models x 6 samples, worked out by hand.
# -----------------------------------------------------------------------------

LABELS = np.array([0, 1, 2, 0, 1, 2])
PREDICTIONS = np.array([
    [0, 1, 2, 0, 0, 1],  # A: correct 1 1 1 1 0 0
    [0, 1, 0, 1, 0, 2],  # B: correct 1 1 0 0 0 1
    [1, 1, 2, 2, 0, 2],  # C: correct 0 1 1 0 0 1
])
# Oracle pair counts (N11, N10, N01, N00):
#   AB (2, 2, 1, 1) -> Q = (2*1 - 1*2) / (2 + 2) = 0,     D = 3/6
#   AC (2, 2, 1, 1) -> Q = 0,                             D = 3/6
#   BC (2, 1, 1, 2) -> Q = (2*2 - 1*1) / (4 + 1) = 3/5,   D = 2/6
EXPECTED_Q = (0 + 0 + 3 / 5) / 3
EXPECTED_D = (1 / 2 + 1 / 2 + 1 / 3) / 3  # 4/9
# Correct per sample l = (2, 3, 2, 1, 0, 2), L = 3:
#   KW = sum l (3 - l) / (6 * 9) = (2 + 0 + 2 + 2 + 0 + 2) / 54 = 4/27
#   (= (L - 1) / (2 L) * D, Kuncheva & Whitaker's identity).
EXPECTED_KW = 4 / 27
# Failures per sample f = (1, 0, 1, 2, 3, 1):
#   p(1) = mean(f) / 3 = 4/9, p(2) = mean(f (f - 1)) / 6 = 2/9, GD = 1/2.
EXPECTED_GD = 0.5
# Cohen's kappa on labels: every pair agrees on 3 of 6 samples (p_o = 1/2).
# Class frequencies A (3,2,1)/6, B (3,2,1)/6, C (1,2,3)/6:
#   AB: p_e = 14/36 -> (1/2 - 7/18) / (11/18) = 2/11
#   AC, BC: p_e = 10/36 -> (1/2 - 5/18) / (13/18) = 4/13
EXPECTED_CK = (2 / 11 + 4 / 13 + 4 / 13) / 3  # 38/143
# Fleiss: per-sample agreement P_i = (1/3, 1, 1/3, 0, 1, 1/3), P_bar = 1/2;
# class shares over 18 votes (7, 6, 5)/18, P_e = 110/324 = 55/162:
#   (1/2 - 55/162) / (1 - 55/162) = 26/107.
EXPECTED_FK = 26 / 107


def test_metrics_on_hand_computed_team():
  assert ensemble.q_statistic(PREDICTIONS, LABELS) == pytest.approx(EXPECTED_Q)
  assert ensemble.binary_disagreement(PREDICTIONS, LABELS) == pytest.approx(
      EXPECTED_D)
  assert ensemble.kohavi_wolpert_variance(PREDICTIONS, LABELS) == (
      pytest.approx(EXPECTED_KW))
  assert ensemble.generalized_diversity(PREDICTIONS, LABELS) == pytest.approx(
      EXPECTED_GD)
  assert ensemble.pairwise_cohen_kappa(PREDICTIONS) == pytest.approx(
      EXPECTED_CK)
  assert ensemble.fleiss_kappa(PREDICTIONS) == pytest.approx(EXPECTED_FK)


def test_focal_diversity_metrics_convert_to_lower_is_more_diverse():
  scores = ensemble.focal_diversity_metrics(PREDICTIONS, LABELS)
  assert set(scores) == set(ensemble.DIVERSITY_METRICS)
  expected = {"CK": EXPECTED_CK, "QS": EXPECTED_Q, "BD": 1 - EXPECTED_D,
              "FK": EXPECTED_FK, "KW": 1 - EXPECTED_KW, "GD": 1 - EXPECTED_GD}
  for name, value in expected.items():
    assert scores[name] == pytest.approx(value), name


def test_oracle_outputs():
  np.testing.assert_array_equal(
      ensemble.oracle_outputs(PREDICTIONS, LABELS),
      [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 1], [0, 1, 1, 0, 0, 1]])


def test_identical_members_are_not_diverse():
  team = np.stack([PREDICTIONS[0]] * 3)
  assert ensemble.pairwise_cohen_kappa(team) == pytest.approx(1.0)
  assert ensemble.fleiss_kappa(team) == pytest.approx(1.0)
  assert ensemble.q_statistic(team, LABELS) == pytest.approx(1.0)
  assert ensemble.binary_disagreement(team, LABELS) == 0.0
  assert ensemble.kohavi_wolpert_variance(team, LABELS) == 0.0
  assert ensemble.generalized_diversity(team, LABELS) == 0.0
  scores = ensemble.focal_diversity_metrics(team, LABELS)
  assert scores == pytest.approx(
      {"CK": 1, "QS": 1, "BD": 1, "FK": 1, "KW": 1, "GD": 1})


def test_complementary_members_are_maximally_diverse():
  # Exactly one of the two is right on every sample.
  labels = np.array([0, 0, 1, 1])
  team = np.array([[0, 1, 1, 0], [1, 0, 0, 1]])
  # Pair counts N11 = N00 = 0, N10 = N01 = 2 -> Q = -4/4 = -1, D = 1.
  # Labels never agree, p_e = 1/2 -> kappa = (0 - 1/2) / (1/2) = -1.
  # KW = mean(1 * 1) / 4 = 1/4; f = 1 everywhere -> p(2) = 0, GD = 1.
  assert ensemble.q_statistic(team, labels) == pytest.approx(-1.0)
  assert ensemble.binary_disagreement(team, labels) == 1.0
  assert ensemble.pairwise_cohen_kappa(team) == pytest.approx(-1.0)
  assert ensemble.fleiss_kappa(team) == pytest.approx(-1.0)
  assert ensemble.kohavi_wolpert_variance(team, labels) == pytest.approx(0.25)
  assert ensemble.generalized_diversity(team, labels) == pytest.approx(1.0)
  assert ensemble.focal_diversity_metrics(team, labels) == pytest.approx(
      {"CK": -1, "QS": -1, "BD": 0, "FK": -1, "KW": 0.75, "GD": 0})


def test_undefined_cases_follow_documented_conventions():
  labels = np.zeros(4, int)
  constant = np.zeros((2, 4), int)  # Both always predict 0, always correct.
  assert ensemble.pairwise_cohen_kappa(constant) == 1.0
  assert ensemble.fleiss_kappa(constant) == 1.0
  assert ensemble.q_statistic(constant, labels) == 0.0  # 0/0.
  assert ensemble.generalized_diversity(constant, labels) == 0.0  # No failure.


def loop_metrics(predictions, labels):
  """The six raw metrics, one pair / one sample at a time (EnsembleBench's
  loops; kappa as sklearn's confusion-matrix formula)."""
  num_members, num_samples = predictions.shape
  num_classes = max(predictions.max(), labels.max()) + 1
  kappas, qs, ds = [], [], []
  for i, j in itertools.combinations(range(num_members), 2):
    confusion = np.zeros((num_classes, num_classes))
    for a, b in zip(predictions[i], predictions[j]):
      confusion[a, b] += 1
    p_o = np.trace(confusion) / num_samples
    p_e = np.sum(confusion.sum(0) * confusion.sum(1)) / num_samples**2
    kappas.append((p_o - p_e) / (1 - p_e))
    a, b = predictions[i] == labels, predictions[j] == labels
    n11, n00 = np.sum(a & b), np.sum(~a & ~b)
    n10, n01 = np.sum(a & ~b), np.sum(~a & b)
    qs.append((n11 * n00 - n01 * n10) / (n11 * n00 + n01 * n10))
    ds.append((n01 + n10) / num_samples)
  counts = np.zeros((num_samples, num_classes))
  for row in predictions:
    counts[np.arange(num_samples), row] += 1
  shares = counts.sum(0) / counts.sum()
  agreement = (np.sum(counts**2, 1) - num_members) / (
      num_members * (num_members - 1))
  fk = (agreement.mean() - np.sum(shares**2)) / (1 - np.sum(shares**2))
  num_correct = np.sum(predictions == labels, axis=0)
  kw = np.sum(num_correct * (num_members - num_correct)) / (
      num_samples * num_members**2)
  fails = num_members - num_correct
  p1 = np.mean(fails) / num_members
  p2 = np.mean(fails * (fails - 1)) / (num_members * (num_members - 1))
  return [np.mean(kappas), np.mean(qs), np.mean(ds), fk, kw, 1 - p2 / p1]


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_loop_definitions_on_random_teams(seed):
  rng = np.random.default_rng(seed)
  num_members, num_samples, num_classes = 2 + seed, 30, 3 + seed % 2
  labels = rng.integers(0, num_classes, num_samples)
  noise = rng.integers(0, num_classes, (num_members, num_samples))
  predictions = np.where(rng.random((num_members, num_samples)) < 0.6, labels,
                         noise)
  got = [
      ensemble.pairwise_cohen_kappa(predictions),
      ensemble.q_statistic(predictions, labels),
      ensemble.binary_disagreement(predictions, labels),
      ensemble.fleiss_kappa(predictions),
      ensemble.kohavi_wolpert_variance(predictions, labels),
      ensemble.generalized_diversity(predictions, labels),
  ]
  np.testing.assert_allclose(got, loop_metrics(predictions, labels),
                             rtol=1e-10, atol=1e-12)


def test_predicted_labels_are_member_argmax():
  logits = _one_hot_logits([[0, 2], [1, 1]], 3)
  np.testing.assert_array_equal(ensemble.predicted_labels(logits),
                                [[0, 2], [1, 1]])


# -----------------------------------------------------------------------------
# Selection.
# -----------------------------------------------------------------------------


def random_pool(seed, num_models=5, num_samples=60, num_classes=3):
  """Members of assorted skill: logits noise plus a boost on the label."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, num_samples)
  logits = rng.normal(size=(num_models, num_samples, num_classes))
  boost = rng.uniform(0.0, 2.0, size=(num_models, 1))
  logits[:, np.arange(num_samples), labels] += boost
  return logits.astype(np.float32), labels


def soft_vote_nll(logits, labels, members):
  """Float64 NLL of the soft vote, written out independently."""
  z = logits[list(members)].astype(np.float64)
  p = np.exp(z - z.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  return -np.mean(np.log(p.mean(0)[np.arange(len(labels)), labels]))


def member_accuracies(logits, labels):
  return [float(ensemble.accuracy(m, labels)) for m in logits]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_greedy_never_worse_than_best_single_member(seed):
  logits, labels = random_pool(seed, num_models=6)
  by_accuracy = ensemble.greedy_selection(logits, labels, max_size=8)
  assert by_accuracy.method == "greedy"
  assert by_accuracy.val_accuracy >= max(member_accuracies(logits, labels))
  by_nll = ensemble.greedy_selection(logits, labels, max_size=8, metric="nll")
  best_single_nll = min(
      soft_vote_nll(logits, labels, [m]) for m in range(len(logits)))
  assert soft_vote_nll(logits, labels, by_nll.members) <= best_single_nll + 1e-9
  for selection in (by_accuracy, by_nll):
    assert 1 <= len(selection.members) <= 8
    counts = np.bincount(selection.members, minlength=len(logits))
    np.testing.assert_allclose(selection.weights,
                               counts / len(selection.members))


def skilled_pool(seed, num_samples=80):
  """Member 0 strong, member 1 fair, members 2 and 3 guessing."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, num_samples)
  logits = rng.normal(size=(4, num_samples, 3)).astype(np.float32)
  logits[0, np.arange(num_samples), labels] += 2.0
  logits[1, np.arange(num_samples), labels] += 1.0
  return logits, labels


def test_greedy_adds_with_replacement():
  logits, labels = skilled_pool(2)
  selection = ensemble.greedy_selection(logits, labels, max_size=6)
  assert selection.members[0] == 0  # The best single model.
  assert len(set(selection.members)) < len(selection.members)  # Repeats.
  assert selection.val_accuracy > max(member_accuracies(logits, labels))
  np.testing.assert_allclose(
      selection.val_accuracy,
      ensemble.accuracy(ensemble.soft_vote(logits[list(selection.members)]),
                        labels))


def test_greedy_keeps_the_shortest_of_equally_good_ensembles():
  # A dominant member: repeating it changes nothing, so it stays alone.
  logits, labels = skilled_pool(0)
  logits[0, np.arange(len(labels)), labels] += 6.0
  for metric in ensemble.GREEDY_METRICS:
    selection = ensemble.greedy_selection(logits, labels, 5, metric=metric)
    assert selection.members == (0,)
    np.testing.assert_array_equal(selection.weights, [1, 0, 0, 0])


def test_greedy_starts_from_the_best_n():
  logits, labels = skilled_pool(3)
  selection = ensemble.greedy_selection(logits, labels, 4, init_size=2)
  assert selection.members[:2] == (0, 1)
  assert 2 <= len(selection.members) <= 4


def brute_force_best(logits, labels, max_size, combiner):
  best_key, best_team = None, None
  for size in range(1, max_size + 1):
    for team in itertools.combinations(range(len(logits)), size):
      acc = float(ensemble.accuracy(combiner(logits[list(team)]), labels))
      key = (-acc, soft_vote_nll(logits, labels, team), size, team)
      if best_key is None or key < best_key:
        best_key, best_team = key, team
  return best_team, -best_key[0]


@pytest.mark.parametrize("seed,max_size,combiner", [
    (0, 5, ensemble.soft_vote),
    (1, 5, ensemble.soft_vote),
    (2, 2, ensemble.soft_vote),
    (3, 4, ensemble.plurality_vote),
])
def test_exhaustive_finds_the_brute_force_optimum(seed, max_size, combiner):
  logits, labels = random_pool(seed)
  selection = ensemble.exhaustive_selection(logits, labels, max_size, combiner)
  team, acc = brute_force_best(logits, labels, max_size, combiner)
  assert selection.method == "exhaustive"
  assert selection.members == team
  assert selection.val_accuracy == pytest.approx(acc)
  assert selection.combiner is combiner
  np.testing.assert_allclose(selection.weights.sum(), 1.0)


def test_exhaustive_with_a_custom_jax_combiner_matches_builtin():
  logits, labels = random_pool(4, num_models=4)
  custom = ensemble.exhaustive_selection(
      logits, labels, combiner=lambda l: ensemble.soft_vote(l) * 2.0)
  builtin = ensemble.exhaustive_selection(logits, labels)
  assert custom.members == builtin.members


def test_exhaustive_guard_names_the_argument():
  logits = np.zeros((17, 2, 2), np.float32)
  labels = np.zeros(2, int)
  with pytest.raises(ValueError, match="max_size"):
    ensemble.exhaustive_selection(logits, labels)
  with pytest.raises(ValueError, match="max_teams"):
    ensemble.exhaustive_selection(logits[:5], labels, max_teams=10)


def complementary_pool(copies_of_pair_member=False):
  """Pool where members 1 and 3 are accurate and complementary.

  Member 1 errs on samples 0..39, member 3 on 40..79, each confidently right
  elsewhere and only mildly wrong, so their soft vote is always right. The
  others are exact copies of a weak member (wrong on 0..19, 40..59, 80..119),
  or, with ``copies_of_pair_member``, of member 1.
  """
  num_samples, num_classes = 200, 4
  labels = np.arange(num_samples) % num_classes
  def member(wrong):
    logits = np.zeros((num_samples, num_classes), np.float32)
    right = np.ones(num_samples, bool)
    right[wrong] = False
    logits[right, labels[right]] = 3.0
    logits[~right, (labels[~right] + 1) % num_classes] = 1.5
    return logits
  first = member(np.arange(0, 40))
  second = member(np.arange(40, 80))
  weak = member(np.r_[0:20, 40:60, 80:120])
  copy = first if copies_of_pair_member else weak
  return np.stack([copy, first, copy, second, copy]), labels


def test_focal_diversity_picks_the_complementary_pair():
  logits, labels = complementary_pool()
  selection = ensemble.focal_diversity_selection(logits, labels)
  assert selection.method == "focal_diversity"
  assert {1, 3} <= set(selection.members)
  assert selection.val_accuracy == 1.0
  assert selection.members in selection.candidates


def test_focal_diversity_with_copies_of_a_pair_member():
  logits, labels = complementary_pool(copies_of_pair_member=True)
  selection = ensemble.focal_diversity_selection(logits, labels)
  assert 3 in selection.members
  assert set(selection.members) & {0, 1, 2, 4}
  assert selection.val_accuracy == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_focal_diversity_returns_a_valid_team(seed):
  logits, labels = random_pool(seed, num_models=6, num_samples=120)
  selection = ensemble.focal_diversity_selection(logits, labels)
  members = selection.members
  assert 2 <= len(members) <= 5
  assert len(set(members)) == len(members)
  assert all(0 <= m < 6 for m in members)
  acc = float(ensemble.accuracy(ensemble.soft_vote(logits[list(members)]),
                                labels))
  assert selection.val_accuracy == pytest.approx(acc)
  # Deterministic (fixed seed).
  again = ensemble.focal_diversity_selection(logits, labels)
  assert again.members == members and again.candidates == selection.candidates
  single = ensemble.focal_diversity_selection(logits, labels, metrics=("GD",),
                                              max_size=3)
  assert 2 <= len(single.members) <= 3


def test_evaluate_selection_on_test_split():
  logits, labels = random_pool(5)
  test_logits, test_labels = random_pool(6)
  selection = ensemble.greedy_selection(logits, labels, max_size=6)
  members = list(selection.members)
  expected = float(ensemble.accuracy(
      ensemble.soft_vote(test_logits[members]), test_labels))
  assert ensemble.evaluate_selection(selection, test_logits,
                                     test_labels) == pytest.approx(expected)
  plural = ensemble.exhaustive_selection(logits, labels, 3,
                                         ensemble.plurality_vote)
  expected = float(ensemble.accuracy(
      ensemble.plurality_vote(test_logits[list(plural.members)]), test_labels))
  assert ensemble.evaluate_selection(plural, test_logits,
                                     test_labels) == pytest.approx(expected)


# -----------------------------------------------------------------------------
# Errors.
# -----------------------------------------------------------------------------

SELECTORS = [
    lambda l, y: ensemble.exhaustive_selection(l, y),
    lambda l, y: ensemble.greedy_selection(l, y, max_size=3),
    lambda l, y: ensemble.focal_diversity_selection(l, y),
]


@pytest.mark.parametrize("select", SELECTORS)
def test_selectors_reject_bad_pools(select):
  logits, labels = random_pool(0, num_models=4, num_samples=10)
  with pytest.raises(ValueError, match="labels must have shape"):
    select(logits, labels[:-1])
  with pytest.raises(ValueError, match="empty"):
    select(logits[:0], labels)
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
    select(logits, np.where(labels == 0, 3, labels))
  with pytest.raises(ValueError, match="labels must lie"):
    select(logits, labels - 1)
  with pytest.raises(ValueError, match="integers"):
    select(logits, labels.astype(float))
  with pytest.raises(ValueError, match=r"shape \(M, N, C\)"):
    select(logits[0], labels)
  bad = logits.copy()
  bad[0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    select(bad, labels)


def test_selectors_reject_bad_arguments():
  logits, labels = random_pool(0, num_models=4, num_samples=10)
  with pytest.raises(ValueError, match="max_size"):
    ensemble.exhaustive_selection(logits, labels, max_size=0)
  with pytest.raises(ValueError, match="max_size"):
    ensemble.exhaustive_selection(logits, labels, max_size=5)
  with pytest.raises(ValueError, match="metric"):
    ensemble.greedy_selection(logits, labels, 3, metric="auc")
  with pytest.raises(ValueError, match="max_size"):
    ensemble.greedy_selection(logits, labels, 1, init_size=2)
  with pytest.raises(ValueError, match="init_size"):
    ensemble.greedy_selection(logits, labels, 5, init_size=5)
  with pytest.raises(ValueError, match="at least 3 models"):
    ensemble.focal_diversity_selection(logits[:2], labels)
  with pytest.raises(ValueError, match="max_size"):
    ensemble.focal_diversity_selection(logits, labels, max_size=4)
  with pytest.raises(ValueError, match="metrics"):
    ensemble.focal_diversity_selection(logits, labels, metrics=("XX",))
  selection = ensemble.greedy_selection(logits, labels, 2)
  with pytest.raises(ValueError, match="selection was made from 4"):
    ensemble.evaluate_selection(selection, logits[:3], labels)


def test_combiners_and_metrics_reject_bad_shapes():
  with pytest.raises(ValueError, match=r"\(M, N, C\)"):
    ensemble.soft_vote(np.zeros((3, 4)))
  with pytest.raises(ValueError, match="empty"):
    ensemble.plurality_vote(np.zeros((0, 4, 2)))
  with pytest.raises(ValueError, match="samples"):
    ensemble.accuracy(np.zeros((3, 2)), np.zeros(4, int))
  with pytest.raises(ValueError, match="at least 2 members"):
    ensemble.q_statistic(PREDICTIONS[:1], LABELS)
  with pytest.raises(ValueError, match="labels must have shape"):
    ensemble.binary_disagreement(PREDICTIONS, LABELS[:-1])
  with pytest.raises(ValueError, match="integer"):
    ensemble.fleiss_kappa(PREDICTIONS.astype(float))
