"""Build and run the search: Ray Tune trials sampled by an Optuna study, stopped early by ASHA.

Resume design: the Optuna study is the state. A re-run (``--resume``) marks the killed driver's
RUNNING trials FAIL, counts the COMPLETE + PRUNED trials and runs a *new* Tune experiment for the
rest (``<study>-2``, ``-3``... next to the first one), re-enqueuing grid points and
``points_to_evaluate`` that never finished. ``Tuner.restore`` is not used: it would restart the
interrupted Tune trials under their old Optuna trials, which the start-up clean-up has just marked
FAIL, and it cannot resume a search whose driver died before Tune's first experiment checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from hpc_seg.config import config_hash, to_dict
from hpc_seg.errors import ConfigError, InputError, LaunchError
from hpc_seg.hpo.search_config import SearchConfig
from hpc_seg.hpo.space import to_distributions
from hpc_seg.hpo.storage import (Heartbeat, default_storage_url, driver_identity,
                                 end_interrupted_session, fail_own_trials, fail_stale_trials,
                                 open_storage, redact)
from hpc_seg.hpo.trainable import TrialContext, trial_slices_dir, trial_train_config
from hpc_seg.logs import verbose_enabled
from hpc_seg.storage.names import safe_name

log = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class SearchResult:
    """What a search produced; ``best_*`` are None while no trial is COMPLETE."""

    study_name: str
    storage: str
    run_dir: Path
    states: dict[str, int]
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_model: Path | None = None
    best_checkpoint: Path | None = None


def run_search(cfg: SearchConfig, run_dir: Path, resume: bool = False) -> SearchResult:
    """Run (or resume, or skip when finished) the search described by ``cfg`` into ``run_dir``.

    ``run_dir`` gets ``study.db`` (unless ``cfg.storage`` names another database), ``tune/``
    (Tune experiments) and ``trials/trial-NNNN/`` (each trial's checkpoints and model).
    """
    run_dir = Path(run_dir).resolve()
    # Optuna configures its own handler at import ("[I ...] A new study created"): quiet unless -v
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose_enabled() else optuna.logging.WARNING)
    url = cfg.storage or default_storage_url(run_dir)
    dists = to_distributions(cfg.space, "space")
    ctx = TrialContext(train_fn=cfg.train_fn, train_config=cfg.train_config, train=dict(cfg.train),
                       slices_dir=_abs_template(cfg.data.slices_dir))
    planned = _check_trials(cfg, ctx, dists)
    max_t = cfg.asha.max_t or planned
    if max_t > planned:
        raise ConfigError(f"[search] asha.max_t={max_t} is beyond the trials' {planned} epochs")

    storage = open_storage(url)
    study = _open_study(cfg, storage, url)
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED for t in trials)
    target = cfg.target_trials
    if finished >= target:
        log.info("study %s already has %d finished trials (target %d); nothing to run",
                 cfg.study_name, finished, target)
        return summarize_study(study, url, run_dir)
    started = [t for t in trials if t.state != TrialState.WAITING]
    if started and not resume:
        raise ConfigError(f"study {cfg.study_name!r} in {redact(url)} already has {len(started)} "
                          f"trial(s), {finished} finished of {target}; pass --resume to continue it, "
                          "or set another [search] study_name")
    fail_stale_trials(storage, cfg.study_name, cfg.stale_after_s)
    _enqueue_fixed_points(cfg, study)
    todo = target - finished
    log.info("study %s: %d of %d trials finished, running %d more (storage %s)",
             cfg.study_name, finished, target, todo, redact(url))
    with search_cluster(cfg, run_dir) as resources:
        _fit(cfg, study, storage, dists, ctx, run_dir, todo, max_t, resources)
    result = summarize_study(study, url, run_dir)
    done = result.states.get("COMPLETE", 0) + result.states.get("PRUNED", 0)
    if done < target:
        log.warning("study %s has %d of %d trials finished (%s); run again with --resume to "
                    "fill it up", cfg.study_name, done, target, result.states)
    return result


def _abs_template(path: str) -> str:
    # Tune runs each trial in its own working directory, so relative paths would break there.
    return str(Path(path).absolute()) if path else ""


def _probe_params(cfg: SearchConfig, dists: dict[str, BaseDistribution]) -> list[dict[str, Any]]:
    """Parameter sets that try every categorical choice (and every grid point) once."""
    base = {k: d.choices[0] if isinstance(d, CategoricalDistribution) else d.low
            for k, d in dists.items()}
    probes = [base] + [{**base, k: c} for k, d in dists.items()
                       if isinstance(d, CategoricalDistribution) for c in d.choices[1:]]
    if cfg.mode == "grid":
        probes += [p for _, p in cfg.grid_points()]
    return probes + [{**base, **p} for p in cfg.points_to_evaluate]


def _check_trials(cfg: SearchConfig, ctx: TrialContext, dists: dict[str, BaseDistribution]) -> int:
    """Build the training config of every probe (errors name the value); returns planned epochs."""
    if not ctx.slices_dir:
        raise ConfigError("[search] data.slices_dir is required (the slices dataset of the trials)")
    planned = None
    for params in _probe_params(cfg, dists):
        try:
            train_cfg = trial_train_config(ctx, params)
            slices = trial_slices_dir(ctx, params)
        except ConfigError as exc:
            raise ConfigError(f"[search] trial config {params}: {exc}") from None
        except (KeyError, IndexError) as exc:
            raise ConfigError(f"[search] data.slices_dir {cfg.data.slices_dir!r}: unknown "
                              f"placeholder {exc}") from None
        if not slices.is_dir():
            raise InputError(f"{slices}: slices dataset not found (needed by trials with {params})")
        epochs = getattr(train_cfg, "epochs", None)
        if not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"[search] train_config {cfg.train_config!r} has no positive "
                              "'epochs' property; the searcher needs it to tell finished trials")
        if planned is not None and epochs != planned:
            raise ConfigError("[search] every trial must train the same number of epochs (ASHA "
                              f"compares them epoch by epoch), but got {planned} and {epochs}")
        planned = epochs
    return planned


def _open_study(cfg: SearchConfig, storage: BaseStorage, url: str) -> optuna.Study:
    study = optuna.create_study(study_name=cfg.study_name, storage=storage, load_if_exists=True,
                                direction=cfg.direction)
    if study.direction.name.lower() != cfg.direction:
        raise ConfigError(f"study {cfg.study_name!r} in {redact(url)} was created to "
                          f"{study.direction.name.lower()}, but [search] metric_mode asks to "
                          f"{cfg.direction}; use another study_name")
    seed = cfg.seed + len(study.get_trials(deepcopy=False))  # a resumed run must not replay seeds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = (optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.n_startup_trials,
                                                    constant_liar=True)
                         if cfg.mode == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    settings = {"search_config": to_dict(cfg), "target_trials": cfg.target_trials,
                "metric": cfg.metric}
    old = study.user_attrs.get("search_config_hash")
    if old and old != config_hash(cfg):
        log.warning("study %s: the [search] config changed since the study started", cfg.study_name)
    for key, value in {**settings, "search_config_hash": config_hash(cfg)}.items():
        study.set_user_attr(key, value)
    return study


def _enqueue_fixed_points(cfg: SearchConfig, study: optuna.Study) -> None:
    """Enqueue grid points / points_to_evaluate that are not finished, queued or running."""
    points = cfg.grid_points() if cfg.mode == "grid" else \
        [(f"point{i}", p) for i, p in enumerate(cfg.points_to_evaluate)]
    have = {t.user_attrs.get("fixed_point") for t in study.get_trials(deepcopy=False)
            if t.state in (*FINISHED, TrialState.WAITING, TrialState.RUNNING)}
    for name, params in points:
        if name not in have:
            study.enqueue_trial(params, user_attrs={"fixed_point": name})


@contextmanager
def search_cluster(cfg: SearchConfig, run_dir: Path) -> Iterator[dict[str, float]]:
    """Use the connected Ray, or join ``cfg.ray_address`` / ``RAY_ADDRESS`` (set inside ``hpc-seg
    cluster submit``), or start a local instance; yields the cluster's resources.

    On a cluster, trials write their folders and checkpoints under ``run_dir`` from every node:
    it must be on a file system they all share, which is checked before the first trial.
    """
    import ray

    from hpc_seg.runtime.ray_connect import check_shared_path, cluster_address, ray_session

    local: dict[str, Any] = {"num_cpus": cfg.num_cpus, "include_dashboard": cfg.dashboard,
                             "dashboard_host": cfg.dashboard_host,
                             # trial workers' logs and Ray's banner only with -v
                             "log_to_driver": verbose_enabled(),
                             "logging_level": logging.INFO if verbose_enabled() else logging.WARNING}
    if cfg.dashboard_port:
        local["dashboard_port"] = cfg.dashboard_port
    with ray_session(cluster_address(cfg.ray_address), **local) as session:
        if not session.started_here:
            log.info("using the Ray instance this process is already connected to")
        elif session.dashboard_url:
            auth = "" if os.environ.get("RAY_AUTH_MODE") == "disabled" else \
                " (token auth: send the token from ~/.ray/auth_token)"
            log.info("Ray dashboard: http://%s%s", session.dashboard_url, auth)
        elif not session.joined_cluster:
            log.info("Ray started without a dashboard ([search] dashboard = false)")
        if session.joined_cluster or len(ray.nodes()) > 1:
            check_shared_path(run_dir, "the search folder (Tune storage, trial checkpoints)")
        yield ray.cluster_resources()


def _trial_resources(cfg: SearchConfig, cluster: dict[str, float]) -> tuple[dict[str, float], bool]:
    """Per-trial resources, and whether trials must run on CPU; refuses what would stay PENDING."""
    gpus, cpus = cluster.get("GPU", 0), cluster.get("CPU", 0)
    if cfg.cpus_per_trial > cpus:
        raise LaunchError(f"[search] cpus_per_trial={cfg.cpus_per_trial} exceeds the Ray "
                          f"cluster's {cpus:g} CPUs; trials would stay PENDING for ever")
    if gpus <= 0:
        if cfg.gpus_per_trial:
            log.warning("the Ray cluster has no GPU: running trials CPU-only instead of with "
                        "gpus_per_trial=%g (they would stay PENDING for ever)", cfg.gpus_per_trial)
        else:
            log.info("the Ray cluster has no GPU: trials run CPU-only")
        return {"cpu": cfg.cpus_per_trial}, True
    share = 0.25 if cfg.gpus_per_trial is None else cfg.gpus_per_trial
    if share > gpus:
        raise LaunchError(f"[search] gpus_per_trial={share} exceeds the Ray cluster's {gpus:g} "
                          "GPUs; trials would stay PENDING for ever")
    log.info("trials use %g GPU each (%g of %g GPUs busy at most)", share,
             min(share * cfg.max_concurrent, gpus), gpus)
    return ({"cpu": cfg.cpus_per_trial, "gpu": share} if share else {"cpu": cfg.cpus_per_trial},
            share == 0)


def _trial_dirname(trial) -> str:
    from hpc_seg.hpo.optuna_searcher import trial_dirname

    return trial_dirname(trial.config.get("trial_number", 0), trial.trial_id)


def _experiment_name(tune_dir: Path, study_name: str) -> str:
    base = safe_name(study_name)        # a TOML value: never a path out of tune_dir
    name, k = base, 1
    while (tune_dir / name).exists():
        k += 1
        name = f"{base}-{k}"
    return name


def _fit(cfg: SearchConfig, study: optuna.Study, storage: BaseStorage,
         dists: dict[str, BaseDistribution],
         ctx: TrialContext, run_dir: Path, todo: int, max_t: int, cluster: dict[str, float]) -> None:
    if not verbose_enabled():
        # Ray 2.60's new console output prints an experiment box and result paths even at
        # verbose=0 (ray/tune/experimental/output.py); its legacy reporter is silent at 0. Tune's
        # "slow callback" hints (TUNE_WARN_THRESHOLD_S, read when ray.tune is first imported) are
        # noise on a busy machine: -v keeps both.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "60")
    from ray import tune

    from hpc_seg.hpo.optuna_searcher import RecordingASHA, StudySearcher
    from hpc_seg.hpo.trainable import train_trial

    resources, cpu_only = _trial_resources(cfg, cluster)
    ctx = dataclasses.replace(ctx, force_cpu=cpu_only)
    asha = RecordingASHA(time_attr="training_iteration", metric=cfg.metric, mode=cfg.metric_mode,
                         max_t=max_t, grace_period=min(cfg.asha.grace_period, max_t),
                         reduction_factor=cfg.asha.reduction_factor)
    tune_dir = run_dir / "tune"
    name = _experiment_name(tune_dir, cfg.study_name)
    searcher = StudySearcher(study, storage, dists, metric=cfg.metric, mode=cfg.metric_mode,
                             max_trials=todo, trials_dir=run_dir / "trials",
                             experiment_dir=tune_dir / name, driver=driver_identity(),
                             stopped_by_scheduler=asha.stopped)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train_trial, ctx=ctx), resources),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=asha, num_samples=todo,
                                    max_concurrent_trials=cfg.max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=name,
                                  storage_path=str(tune_dir),
                                  failure_config=tune.FailureConfig(max_failures=0),
                                  # Tune's status tables only with -v; the searcher logs a line
                                  # per trial instead
                                  verbose=1 if verbose_enabled() else 0))
    with Heartbeat(storage, searcher.live_trial_ids), _sigint_raises():
        try:
            tuner.fit()
        finally:
            # Ctrl-C or a driver error: nothing may stay RUNNING in the study.
            end_interrupted_session(storage)
            left = searcher.fail_live_trials("driver stopped before the trial ended")
            left += fail_own_trials(storage, cfg.study_name, "driver stopped before the trial ended")
            if left:
                log.warning("marked trial(s) %s FAIL: the driver stopped before they ended", left)


@contextmanager
def _sigint_raises() -> Iterator[None]:
    """Let Ctrl-C raise KeyboardInterrupt through ``tuner.fit()``.

    Ray Tune's own SIGINT handler ends the experiment and returns normally, so an interrupted
    search looked finished: the job recorded the stage and exited 0 with no best model.
    ``TUNE_DISABLE_SIGINT_HANDLER`` (read when ``fit`` starts) leaves the signal to Python; the
    live trials are then marked FAIL, Ray is shut down, and the CLI exits 130.
    """
    old = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = old


def summarize_study(study: optuna.Study, url: str, run_dir: Path) -> SearchResult:
    """A :class:`SearchResult` from the study's current state."""
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    result = SearchResult(study_name=study.study_name, storage=url, run_dir=Path(run_dir),
                          states=states)
    if states.get("COMPLETE"):
        best = study.best_trial
        result.best_trial, result.best_value = best.number, best.value
        result.best_params = dict(best.params)
        for attr, key in (("best_model", "model_path"), ("best_checkpoint", "checkpoint")):
            if best.user_attrs.get(key):
                setattr(result, attr, Path(best.user_attrs[key]))
    return result
