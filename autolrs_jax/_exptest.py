"""An ExpTest-style learning-rate controller: hypothesis tests on the loss curve.

*After* ExpTest (Chaudhry & Mizuno, `arXiv 2411.16975
<https://arxiv.org/abs/2411.16975>`_), not a reproduction of it. Only the
paper's abstract could be read: under a stable learning rate the loss decays
exponentially, and hypothesis tests on the loss curve, read as a real-time
signal, first find the initial learning rate and then tune it during training.
The paper's test statistic, windows, thresholds, factors and defaults could not
be consulted, so every choice below is ours and is documented as such.

Training is cut into windows at a constant learning rate. At the end of each
window :func:`autolrs_jax.window_test` judges whether the loss decays. A
*search* phase grows the learning rate geometrically from a tiny value while
the windows keep decaying and improving (:func:`search_window`); a *tuning*
phase then divides it whenever a window shows no significant decay
(:func:`tune_window`). A divergence cuts it (:func:`diverge`). Everything runs
inside one compiled ``update``.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from autolrs_jax import _common
from autolrs_jax import _windows

# Phases of the controller (values of ``ExpTestState.phase``).
SEARCH = 0
TUNE = 1
PHASE_NAMES = ("search", "tune")

# Outcomes of a window's test (values of ``ExpTestState.outcome``); NONE
# before the first window ends.
NONE = -1
FLAT = 0
DECAYING = 1
RISING = 2
OUTCOME_NAMES = ("flat", "decaying", "rising")  # Indexed by outcome >= 0.

# Smoothing of the loss for the divergence bound: an exponential moving
# average with this decay (about 10 steps of memory), so that one minibatch
# spike alone needs to be ~10 x divergence_factor above the best to count.
EMA_DECAY = 0.9

# Largest learning rate the search may set when ``max_lr`` is None: keeps the
# state finite if the loss never reacts to the learning rate.
_LR_CEILING = 1e30


class Controller(NamedTuple):
  """The controller's position, what the update's logic reads and writes.

  Shapes depend only on ``window``. The optimizer state stores it packed
  (:class:`ExpTestState`), beside the base optimizer's state.
  """

  count: _common.Counter  # update calls so far.
  phase: _common.Counter  # SEARCH or TUNE.
  learning_rate: jax.Array  # float32: LR the next update applies.
  block_size: _common.Counter  # steps averaged into one point of the window.
  block_step: _common.Counter  # steps already summed into the current point.
  window_step: _common.Counter  # complete points in the current window.
  losses: jax.Array  # float32[window]: the window's per-point loss sums.
  windows: _common.Counter  # windows tested so far.
  outcome: _common.Counter  # last window's outcome (NONE, FLAT, DECAYING, RISING).
  statistic: _common.Real  # last window's F statistic.
  p_value: _common.Real  # its one-sided p-value for "decaying".
  drop: _common.Real  # its fitted relative drop over the window.
  best_drop: _common.Real  # largest drop of a confirmed search window.
  decay_streak: _common.Counter  # decaying windows in a row; frozen once >= confirm_windows.
  bad_windows: _common.Counter  # consecutive search windows failing after confirmation.
  smoothed_loss: _common.Real  # EMA of the loss; NaN until (re)started.
  best_smoothed_loss: _common.Real  # lowest EMA since the last (re)start.
  num_decreases: _common.Counter  # plateau decreases in the tuning phase.
  num_cuts: _common.Counter  # divergence cuts (skipped steps).
  # bool: the last update was non-finite after a finite loss, so the base
  # optimizer starts again from its initial state at the next update.
  reset_base_state: jax.Array
  # how many of the following calls are known not to fill the window,
  # so that they may run as ``update(..., quiet=True)`` (see quiet_calls_left).
  quiet_calls: _common.Counter


@_common.packs_scalars(Controller)
class ExpTestState(NamedTuple):
  """State of :func:`exptest`: the :class:`Controller`, packed, and the base state.

  The controller's scalars are packed into one array per dtype (a jitted step
  pays for each leaf of its state at every call); each of its fields reads as
  an attribute (``state.phase``, ``state.p_value``), and :attr:`controller`
  unpacks them all.
  """

  # The controller's Counter and Real fields, one array each.
  counters: jax.Array  # int32[12]
  reals: jax.Array  # float32[6]
  # float32: LR the next update applies, a field of its own, so that
  # ``optax.tree.get(opt_state, "learning_rate")`` finds it.
  learning_rate: jax.Array
  losses: jax.Array  # float32[window]: the window's per-point loss sums.
  reset_base_state: jax.Array  # bool: see Controller.reset_base_state.
  # State of the base optimizer, as its last update returned it.
  base_state: optax.OptState

  @property
  def controller(self) -> Controller:
    """The controller, unpacked."""
    return _common.unpack(self, Controller)


class ExpTestConfig(NamedTuple):
  """The static hyper-parameters, as :func:`exptest` validated them."""

  first_lr: float
  search: bool
  window: int
  alpha: float
  growth_factor: float
  confirm_windows: int
  improvement: float
  patience: int
  backoff_factor: float
  decrease_factor: float
  max_block_size: int
  min_lr: float
  lr_cap: float  # max_lr, or a ceiling that keeps the state finite.
  divergence_factor: float
  divergence_cut: float
  axis_name: str | None


def init_controller(cfg: ExpTestConfig) -> Controller:
  """The controller at step 0."""
  i32 = lambda v: jnp.asarray(v, jnp.int32)
  f32 = lambda v: jnp.asarray(v, jnp.float32)
  return Controller(
      count=i32(0),
      phase=i32(SEARCH if cfg.search else TUNE),
      learning_rate=f32(cfg.first_lr),
      block_size=i32(1),
      block_step=i32(0),
      window_step=i32(0),
      losses=jnp.zeros([cfg.window], jnp.float32),
      windows=i32(0),
      outcome=i32(NONE),
      statistic=f32(0.0),
      p_value=f32(1.0),
      drop=f32(0.0),
      best_drop=f32(0.0),
      decay_streak=i32(0),
      bad_windows=i32(0),
      smoothed_loss=f32(jnp.nan),
      best_smoothed_loss=f32(jnp.inf),
      num_decreases=i32(0),
      num_cuts=i32(0),
      reset_base_state=jnp.zeros([], bool),
      quiet_calls=i32(cfg.window - 1),
  )


# --- What a window's end does ------------------------------------------------


class SearchMove(NamedTuple):
  """What a search window decides (used only while searching)."""

  learning_rate: jax.Array
  ends: jax.Array  # bool: the search ends here.
  best_drop: jax.Array
  bad_windows: jax.Array


def search_window(cfg: ExpTestConfig, state: Controller,
                  test: _windows.WindowTest, decaying, rising) -> SearchMove:
  """The search's move after a window.

  Before the decay is confirmed every window grows the LR. After, a window is
  good when it decays and keeps ``improvement`` of the best drop; ``patience``
  bad windows in a row (the LR held meanwhile), or one rising window, end the
  search with a back-off. The search also ends at the LR cap.
  """
  lr = state.learning_rate
  searching = state.phase == SEARCH
  confirmed = state.decay_streak >= cfg.confirm_windows
  good = decaying & (test.drop >= cfg.improvement * state.best_drop)
  bad = confirmed & ~good
  bad_windows = jnp.where(bad, state.bad_windows + 1, 0)
  give_up = confirmed & (rising | (bad_windows >= cfg.patience))
  grown = jnp.minimum(lr * cfg.growth_factor, cfg.lr_cap)
  search_lr = jnp.where(give_up, jnp.maximum(lr / cfg.backoff_factor, cfg.min_lr),
                        jnp.where(bad, lr, grown))
  best_drop = jnp.where(searching & confirmed & good,
                        jnp.maximum(state.best_drop, test.drop), state.best_drop)
  # The first confirmed window sets the reference drop.
  best_drop = jnp.where(searching & ~confirmed & decaying,
                        jnp.maximum(best_drop, test.drop), best_drop)
  return SearchMove(learning_rate=search_lr, ends=give_up | (lr >= cfg.lr_cap),
                    best_drop=best_drop, bad_windows=bad_windows)


def tune_window(cfg: ExpTestConfig, state: Controller, decaying):
  """``(learning_rate, block_size, decreased)`` of the tuning after a window.

  A window that is not decaying divides the LR, and doubles the averaging
  block (the next window looks twice as far).
  """
  decrease = (state.phase != SEARCH) & ~decaying
  lr = jnp.where(decrease, jnp.maximum(state.learning_rate / cfg.decrease_factor, cfg.min_lr),
                 state.learning_rate)
  block_size = jnp.where(decrease, jnp.minimum(2 * state.block_size, cfg.max_block_size),
                         state.block_size)
  return lr, block_size, decrease


def end_window(cfg: ExpTestConfig, state: Controller) -> Controller:
  """Tests the full window, then searches or tunes by its outcome."""
  null = _windows.null_statistics(cfg.window)
  test = _windows.window_test(state.losses / state.block_size.astype(jnp.float32), null)
  decaying = test.p_decay < cfg.alpha
  rising = test.p_rise < cfg.alpha
  outcome = jnp.where(decaying, DECAYING, jnp.where(rising, RISING, FLAT))
  searching = state.phase == SEARCH
  move = search_window(cfg, state, test, decaying, rising)
  tune_lr, block_size, decrease = tune_window(cfg, state, decaying)
  confirmed = state.decay_streak >= cfg.confirm_windows
  return state._replace(
      phase=jnp.where(searching & ~move.ends, SEARCH, TUNE).astype(jnp.int32),
      learning_rate=jnp.where(searching, move.learning_rate, tune_lr).astype(jnp.float32),
      block_size=block_size.astype(jnp.int32),
      window_step=jnp.zeros_like(state.window_step),
      losses=jnp.zeros_like(state.losses),
      windows=state.windows + 1,
      outcome=outcome.astype(jnp.int32),
      statistic=test.statistic,
      p_value=test.p_decay,
      drop=test.drop,
      best_drop=move.best_drop,
      # Once confirmed, the search stays confirmed.
      decay_streak=jnp.where(
          confirmed, state.decay_streak,
          jnp.where(decaying, state.decay_streak + 1, 0)).astype(jnp.int32),
      bad_windows=jnp.where(searching, move.bad_windows, 0).astype(jnp.int32),
      num_decreases=state.num_decreases + decrease.astype(jnp.int32),
  )


# --- Transitions: (cfg, controller, value, smoothed) -> controller -----------


def record(cfg: ExpTestConfig, state: Controller, value, smoothed) -> Controller:
  """A usable step: add its loss to the window."""
  del cfg
  point_done = completes_point(state)
  return state._replace(
      block_step=jnp.where(point_done, 0, state.block_step + 1),
      window_step=state.window_step + point_done.astype(jnp.int32),
      losses=state.losses.at[state.window_step].add(value),
      smoothed_loss=smoothed,
      best_smoothed_loss=jnp.minimum(state.best_smoothed_loss, smoothed),
  )


def record_and_test(cfg: ExpTestConfig, state: Controller, value, smoothed) -> Controller:
  """A usable step that completes the window: add its loss, test the window."""
  return end_window(cfg, record(cfg, state, value, smoothed))


def completes_point(state: Controller) -> jax.Array:
  """Whether recording this step completes the window's current point."""
  return state.block_step + 1 == state.block_size


def fills_window(cfg: ExpTestConfig, state: Controller) -> jax.Array:
  """Whether recording this step completes the window."""
  return state.window_step + completes_point(state).astype(jnp.int32) == cfg.window


def diverge(cfg: ExpTestConfig, state: Controller, value, smoothed) -> Controller:
  """A diverged step: cut the LR, restart the window and the smoothing; tune."""
  del value, smoothed
  lr = jnp.maximum(state.learning_rate / cfg.divergence_cut, cfg.min_lr)
  return state._replace(
      phase=jnp.asarray(TUNE, jnp.int32),
      learning_rate=lr.astype(jnp.float32),
      block_step=jnp.zeros_like(state.block_step),
      window_step=jnp.zeros_like(state.window_step),
      losses=jnp.zeros_like(state.losses),
      decay_streak=jnp.zeros_like(state.decay_streak),
      bad_windows=jnp.zeros_like(state.bad_windows),
      smoothed_loss=jnp.full_like(state.smoothed_loss, jnp.nan),
      best_smoothed_loss=jnp.full_like(state.best_smoothed_loss, jnp.inf),
      num_cuts=state.num_cuts + 1,
  )


def smooth_loss(cfg: ExpTestConfig, state: Controller, value):
  """``(smoothed, exploded)``: the loss's EMA, and whether it broke the bound."""
  started = ~jnp.isnan(state.smoothed_loss)
  smoothed = jnp.where(
      started, EMA_DECAY * state.smoothed_loss + (1.0 - EMA_DECAY) * value, value)
  best = state.best_smoothed_loss
  bound = best + (cfg.divergence_factor - 1.0) * jnp.abs(best)
  return smoothed, started & (smoothed > bound)


def quiet_calls_left(cfg: ExpTestConfig, state: Controller) -> jax.Array:
  """How many calls from ``state``'s on are known not to fill the window: all
  before the one that completes its last point. A divergence restarts the
  window, which only delays its end."""
  calls_to_fill = ((cfg.window - state.window_step - 1) * state.block_size
                   + state.block_size - state.block_step)
  return jnp.maximum(calls_to_fill - 1, 0).astype(jnp.int32)


def finish(cfg: ExpTestConfig, controller: Controller, diverged, loss_bad) -> ExpTestState:
  """The packed state after a call (its base state ``None``): the count, and
  whether the base optimizer starts again."""
  controller = controller._replace(count=optax.safe_increment(controller.count),
                                   reset_base_state=diverged & ~loss_bad)
  controller = controller._replace(quiet_calls=quiet_calls_left(cfg, controller))
  return _common.pack(ExpTestState, controller, base_state=None)


def quiet_advance(cfg: ExpTestConfig, state: ExpTestState, value, smoothed, diverged,
                  loss_bad) -> ExpTestState:
  """:func:`advance` of a call known not to fill the window: :func:`diverge`
  or :func:`record`, both computed and selected (a few scalars), no control
  flow."""
  controller = state.controller
  cut, kept = (transition(cfg, controller, value, smoothed) for transition in (diverge, record))
  controller = _common.select_fields(diverged, cut, kept)
  return finish(cfg, controller, diverged, loss_bad)


def advance(cfg: ExpTestConfig, state: ExpTestState, value, smoothed, diverged,
            loss_bad) -> ExpTestState:
  """The state after this step, without its base state: :func:`diverge`,
  :func:`record_and_test` or :func:`record` (most steps), then the count.

  One ``lax.switch`` that takes and returns the controller packed, each branch
  unpacking and packing it: XLA fuses a branch's scalar updates into the few
  fusions that pack them, where a conditional with a result per scalar runs a
  kernel for each at every step (as :func:`autolrs_jax._autolrs.advance`).
  """
  def branch(transition):
    def run(state, value, smoothed):
      return finish(cfg, transition(cfg, state.controller, value, smoothed), diverged, loss_bad)
    return run

  index = jnp.where(diverged, 0, jnp.where(fills_window(cfg, state.controller), 1, 2))
  return jax.lax.switch(index, [branch(diverge), branch(record_and_test), branch(record)],
                        state, value, smoothed)


def exptest(
    base_optimizer: optax.GradientTransformation,
    *,
    initial_lr: float | None = None,
    search: bool = True,
    search_start_lr: float = 1e-6,
    window: int = 100,
    alpha: float = 0.05,
    growth_factor: float = 2.0,
    confirm_windows: int = 2,
    improvement: float = 0.0,
    patience: int = 2,
    backoff_factor: float = 4.0,
    decrease_factor: float = 2.0,
    max_block_size: int = 16,
    min_lr: float = 0.0,
    max_lr: float | None = None,
    divergence_factor: float = 4.0,
    divergence_cut: float = 10.0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
  """ExpTest-style control of the learning rate by tests on the loss curve.

  *After* ExpTest (Chaudhry & Mizuno, arXiv 2411.16975), built on the idea its
  abstract states: under a stable learning rate the loss decays exponentially,
  so hypothesis tests on the loss curve can find the initial learning rate and
  then tune it during training. The paper's test, windows and thresholds could
  not be consulted: every choice here (the statistic, its calibration, the
  window, alpha, all factors and defaults) is ours, not the paper's.

  Wraps ``base_optimizer``, built with learning rate 1.0, and multiplies its
  updates by the controller's learning rate (as :func:`autolrs_jax.autolrs`
  does; exact for optimizers linear in the learning rate). Every call passes
  the minibatch loss of the current parameters as ``value``. Nothing is ever
  restored: every step trains.

  **Windows.** The learning rate is constant over a window of ``window``
  points; a point is the mean loss of ``block_size`` consecutive steps (1 in
  the search). At the end of a window :func:`autolrs_jax.window_test` (an
  F-test of an exponential fit against a constant, Monte Carlo calibrated)
  judges it at level ``alpha``: *decaying* when ``p_decay < alpha`` (the
  fitted curve then falls), *rising* when ``p_rise < alpha``, *flat*
  otherwise. Its *drop* is the fitted curve's fall over the window relative
  to its start, ``(fit(first) - fit(last)) / |fit(first)|``. Losses are taken
  to be positive, as cross-entropies and squared errors are.

  **Search** (phase ``'search'``). Starts at ``initial_lr``, default
  ``search_start_lr``, and multiplies the learning rate by ``growth_factor``
  after every window until the decay is *confirmed* by ``confirm_windows``
  decaying windows in a row (a single one could be one of the false
  positives, rate alpha, among the dozen flat windows that a tiny start
  gives; before that, flat and rising windows only mean "too small to move
  the loss"). From then on a window is *good* when it is decaying and
  *improving*: its drop is at least ``improvement`` times the best drop of the
  search so far. The default 0 asks only for a decay: a smaller drop is as
  often the loss landscape as the learning rate (a loss that slows down at a
  level whatever the learning rate would end the search there).
  A good window grows the learning rate; a bad one holds it for a second look;
  ``patience`` bad windows in a row, or one rising window, end the search,
  dividing the learning rate by ``backoff_factor`` (default 4: half the last
  learning rate that was good). The search also ends at ``max_lr`` (kept) and
  at a divergence (below).

  **Tuning** (phase ``'tune'``). A window that is not decaying (a plateau, or
  a rise) divides the learning rate by ``decrease_factor``, down to
  ``min_lr``, and doubles ``block_size`` up to ``max_block_size``: the next
  window looks twice as far, averaging twice as many steps per point, so that
  a slow decay lost in minibatch noise over a short window is still found
  over a long one. A decaying window keeps both.

  **Divergence.** A step whose loss or scaled update is NaN/Inf, or whose
  smoothed loss ``S`` (EMA, decay ``EMA_DECAY``, this step's loss included)
  exceeds the best smoothed loss ``B`` since the last (re)start by
  ``(divergence_factor - 1) |B|`` (``S > divergence_factor B`` for positive
  losses), is skipped: zero update, so NaN never reaches the params. After a
  NaN/Inf or exploded loss the base optimizer is fed a zero gradient instead
  of the step's; after a NaN/Inf update with a finite loss, its state is
  spoiled and it starts again from its initial state. (Its new state is
  stored as it comes, never selected, so that XLA updates it in place and
  fuses the update into ``apply_updates``.) Nothing is restored; the learning
  rate is divided by
  ``divergence_cut`` (down to ``min_lr``), the window restarts, a search ends
  (tuning starts), and the smoothing restarts from the next loss (else a loss
  level that stays high after the cut would cut again at every step). The
  bound uses the smoothed loss so that a lone minibatch spike must be about
  ``10 * divergence_factor`` times the best to count.

  Args:
    base_optimizer: the optimizer to control, with learning rate 1.0.
    initial_lr: first learning rate. With ``search`` the search starts there
      (default ``search_start_lr``); without, tuning starts there (required).
    search: run the initial search; False tunes from ``initial_lr``.
    search_start_lr: where the search starts when ``initial_lr`` is None.
    window: points per window (>= 8), the test's sample size. The first
      :func:`exptest` of a given ``window`` spends a few seconds simulating
      its null table (:func:`autolrs_jax.null_statistics`, then cached).
    alpha: significance level of every window test, in (1/8193, 0.5).
    growth_factor: the search's learning-rate factor per window, > 1.
    confirm_windows: decaying windows in a row that confirm the decay, >= 1.
    improvement: fraction of the search's best drop a window must reach to
      count as improving, >= 0 (0: any decaying window is good; > 1 demands
      a growing drop).
    patience: bad search windows in a row that end the search, >= 1.
    backoff_factor: the learning rate is divided by it when the search ends on
      its own, >= 1.
    decrease_factor: tuning divides the learning rate by it after a window
      that is not decaying, > 1.
    max_block_size: cap of ``block_size`` (so of a window, ``window *
      max_block_size`` steps), >= 1.
    min_lr: floor of every decrease and cut, >= 0 and <= the first LR.
    max_lr: cap of the search; None for none.
    divergence_factor: bound on the smoothed loss relative to its best, > 1.
    divergence_cut: the learning rate is divided by it on a divergence, > 1.
    axis_name: set under ``jax.pmap``/``shard_map``: ``value`` is averaged
      over this axis, so that every replica takes the same decisions.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`. Its ``update`` takes
    ``(updates, state, params, *, value, quiet=False, **extra_args)``; extra
    arguments are forwarded to ``base_optimizer`` if it takes them.
    ``quiet=True`` (a Python bool) compiles a step with no conditional, for
    the calls :func:`autolrs_jax.quiet_calls` counts (all but the one that
    fills a window). Read the state with
    :func:`autolrs_jax.describe`, or ``autolrs_jax.find_state(tree,
    kind=None)`` (also under ``jit``).

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import autolrs_jax
    >>> tx = autolrs_jax.exptest(optax.sgd(1.0), window=10)
    >>> params = {'w': jnp.ones(3)}
    >>> state = tx.init(params)
    >>> loss_fn = lambda p: jnp.sum(p['w'] ** 2)
    >>> step = jax.jit(lambda p, s: tx.update(jax.grad(loss_fn)(p), s, p,
    ...                                       value=loss_fn(p)))
    >>> for _ in range(30):
    ...   updates, state = step(params, state)
    ...   params = optax.apply_updates(params, updates)
    >>> autolrs_jax.describe(state)['windows']
    3

  References:
    Z. Chaudhry and N. Mizuno, `arXiv 2411.16975
    <https://arxiv.org/abs/2411.16975>`_, 2024 (ExpTest; only its abstract
    was consulted).
  """
  window = _common.static_number(window, "window")  # It sizes the loss buffer.
  _validate(initial_lr, search, search_start_lr, window, alpha, growth_factor,
            confirm_windows, improvement, patience, backoff_factor, decrease_factor,
            max_block_size, min_lr, max_lr, divergence_factor, divergence_cut)
  cfg = ExpTestConfig(
      first_lr=initial_lr if initial_lr is not None else search_start_lr, search=search,
      window=window, alpha=alpha, growth_factor=growth_factor,
      confirm_windows=confirm_windows, improvement=improvement, patience=patience,
      backoff_factor=backoff_factor, decrease_factor=decrease_factor,
      max_block_size=max_block_size, min_lr=min_lr,
      lr_cap=_LR_CEILING if max_lr is None else max_lr,
      divergence_factor=divergence_factor, divergence_cut=divergence_cut,
      axis_name=axis_name)
  _windows.null_statistics(window)  # Simulated now, not inside the first trace.
  base_optimizer = optax.with_extra_args_support(base_optimizer)

  def init_fn(params):
    packed = _common.build_on_mesh_of(params, lambda: _common.pack(
        ExpTestState, init_controller(cfg), base_state=None))
    return packed._replace(base_state=base_optimizer.init(params))

  def update_fn(updates, state, params=None, *, value=None, quiet=False, **extra_args):
    quiet = _common.check_quiet(quiet, "exptest")
    value = _common.check_loss(value, "value", "exptest", cfg.axis_name)
    controller = state.controller
    smoothed, exploded = smooth_loss(cfg, controller, value)
    # A bad loss is known before the base optimizer runs: it gets a zero gradient.
    loss_bad = ~jnp.isfinite(value) | exploded
    live = optax.tree.where(state.reset_base_state, base_optimizer.init(params),
                            state.base_state)
    base = _common.base_step(base_optimizer, updates, live, params, state.learning_rate,
                             ~loss_bad, extra_args)
    diverged = loss_bad | ~base.finite
    # A diverged step is skipped: zero update.
    scaled = _common.scale_updates(base.updates, state.learning_rate)
    new_updates = _common.zeros_unless(~diverged, scaled)
    next_state = (quiet_advance if quiet else advance)(
        cfg, state._replace(base_state=None), value, smoothed, diverged, loss_bad)
    return new_updates, next_state._replace(base_state=base.state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _validate(initial_lr, search, search_start_lr, window, alpha, growth_factor,
              confirm_windows, improvement, patience, backoff_factor, decrease_factor,
              max_block_size, min_lr, max_lr, divergence_factor, divergence_cut):
  """Raises ValueError naming the first bad hyper-parameter."""
  check = _common.check
  check(initial_lr is None or initial_lr > 0, "initial_lr", "> 0", initial_lr)
  check(search or initial_lr is not None, "initial_lr", "given when search=False", initial_lr)
  check(search_start_lr > 0, "search_start_lr", "> 0", search_start_lr)
  check(window >= 8, "window", ">= 8", window)
  resolution = 1.0 / (2 * _windows.NULL_SAMPLES + 1)
  check((resolution < alpha) & (alpha < 0.5), "alpha", f"in ({resolution:.1e}, 0.5)", alpha)
  check(growth_factor > 1, "growth_factor", "> 1", growth_factor)
  check(confirm_windows >= 1, "confirm_windows", ">= 1", confirm_windows)
  check(improvement >= 0, "improvement", ">= 0", improvement)
  check(patience >= 1, "patience", ">= 1", patience)
  check(backoff_factor >= 1, "backoff_factor", ">= 1", backoff_factor)
  check(decrease_factor > 1, "decrease_factor", "> 1", decrease_factor)
  check(max_block_size >= 1, "max_block_size", ">= 1", max_block_size)
  check(min_lr >= 0, "min_lr", ">= 0", min_lr)
  start = initial_lr if initial_lr is not None else search_start_lr
  check(max_lr is None or max_lr >= start, "max_lr", f">= the first learning rate {start}",
        max_lr)
  check(min_lr <= start, "min_lr", f"<= the first learning rate {start}", min_lr)
  check(divergence_factor > 1, "divergence_factor", "> 1", divergence_factor)
  check(divergence_cut > 1, "divergence_cut", "> 1", divergence_cut)
  check(jnp.isfinite(start), "initial_lr", "finite", initial_lr)


def describe_state(s: ExpTestState) -> dict[str, Any]:
  """The fields of :func:`autolrs_jax.describe` for an ExpTest state."""
  outcome = int(s.outcome)
  return {
      "controller": "exptest",
      "step": int(s.count),
      "phase": PHASE_NAMES[int(s.phase)],
      "learning_rate": float(s.learning_rate),
      "windows": int(s.windows),
      "window_step": int(s.window_step),
      "block_size": int(s.block_size),
      "outcome": OUTCOME_NAMES[outcome] if outcome >= 0 else "none",
      "statistic": float(s.statistic),
      "p_value": float(s.p_value),
      "drop": float(s.drop),
      "num_decreases": int(s.num_decreases),
      "num_cuts": int(s.num_cuts),
  }
