"""Evaluation stages on labelled datasets: ``knn``, ``nn1``, ``linear`` and ``fewshot``.

Each stage takes an :class:`~moeheads.eval.context.EvalContext` and its validated
options, and returns a plain dict whose ``summary`` holds the headline numbers.
Options are the protocol's own (``k``, ``grid``, ``ways``, ...; see
:data:`moeheads.eval.PROTOCOLS`) plus which data to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from moeheads.data import DATASETS, FEWSHOT_SUITE, TRANSFER_METRICS, TRANSFER_SUITE
from moeheads.data.fewshot import PAPER_POOLS
from moeheads.errors import ConfigError
from moeheads.eval import PROTOCOLS
from moeheads.eval.context import DatasetRef, EvalContext, StageOptions, as_component
from moeheads.eval.fewshot import fewshot_eval
from moeheads.eval.linear import linear_probe
from moeheads.eval.paper_splits import PAPER_SPLITS, paper_split
from moeheads.eval.stages import stage
from moeheads.numerics.knn import knn_classify
from moeheads.recipe.schema import Component


def core_options(options: BaseModel, protocol: str, *skip: str) -> dict[str, Any]:
    """The values of ``protocol``'s own keyword options (see :data:`PROTOCOLS`)."""
    names = PROTOCOLS.get(protocol).options.model_fields
    return {name: getattr(options, name) for name in names if name not in skip}


def unique_names(components: Sequence[Component]) -> list[str]:
    """Display names: the dataset name, with its root's folder name where names repeat."""
    names = [c.name for c in components]
    return [
        f"{c.name}:{Path(str(c.options.get('root', '?'))).name}" if names.count(c.name) > 1
        else c.name
        for c in components
    ]


class PairOptions(StageOptions):
    """A labelled train/test pair: ``dataset`` (with ``root``), or ``train`` and ``test``.

    Attributes:
        dataset: A dataset whose ``train`` and ``test`` splits are used.
        root: The folder of ``dataset`` (or of ``train``/``test`` given by name).
        train: The reference images (the recipe's ``probe_train`` by default).
        test: The classified images (the recipe's ``probe_test`` by default).
        max_images: Use at most this many images of each split.
    """

    dataset: DatasetRef | None = None
    root: Path | None = None
    train: DatasetRef | None = None
    test: DatasetRef | None = None
    max_images: int | None = Field(None, ge=1)


def check_named_data(protocol: str, suite: Sequence[str], datasets: Sequence[DatasetRef],
                     root: Path | None, suite_by_default: bool) -> None:
    """Refuse to reach for data the user did not name, saying which option to give.

    Args:
        protocol: The protocol, for the message.
        suite: The datasets used when none are named.
        datasets: The datasets to be used (named, or the suite).
        root: The folder given for every dataset.
        suite_by_default: Whether ``datasets`` is the default suite (not named).

    Raises:
        ConfigError: The default suite without a ``root``, or a named dataset that needs
            a ``root`` and has none.
    """
    if suite_by_default and root is None:
        raise ConfigError(
            f"protocol {protocol!r} needs data: name it with --set 'datasets=[NAME]' and "
            f"--set root=PATH (e.g. datasets=[cifar10]), or give --set root=PATH holding the "
            f"whole suite ({', '.join(suite)})"
        )
    for ref in datasets:
        component = as_component(ref, root)
        if component.name not in DATASETS:
            continue
        field = DATASETS.get(component.name).options.model_fields.get("root")
        if field is not None and field.is_required() and "root" not in component.options:
            raise ConfigError(
                f"protocol {protocol!r}: dataset {component.name!r} needs its files: give "
                f"--set root=PATH (the folder holding them), or name it as "
                f"{{name: {component.name}, root: PATH}}"
            )


class KNNOptions(PairOptions, PROTOCOLS.get("knn").options):  # type: ignore[misc]
    """``knn`` options: the pair plus ``k``, ``temperature``, ``chunk_size``."""


class NN1Options(PairOptions, PROTOCOLS.get("nn1").options):  # type: ignore[misc]
    """``nn1`` options: the pair plus ``chunk_size``."""


def _pair(ctx: EvalContext, o: PairOptions, protocol: str) -> tuple[Component, Component]:
    if o.dataset is not None:
        return as_component(o.dataset, o.root, "train"), as_component(o.dataset, o.root, "test")
    train = as_component(o.train, o.root) if o.train is not None else ctx.probe("train", protocol)
    test = as_component(o.test, o.root) if o.test is not None else ctx.probe("test", protocol)
    return train, test


def _neighbours(ctx: EvalContext, o: PairOptions, protocol: str, k: int,
                temperature: float) -> dict[str, Any]:
    train_c, test_c = _pair(ctx, o, protocol)
    train = ctx.features(train_c, o, o.max_images)
    test = ctx.features(test_c, o, o.max_images)
    result = knn_classify(train.features.to(ctx.device), train.labels, test.features, test.labels,
                          k=k, temperature=temperature, chunk_size=o.chunk_size)
    summary = {"top1": result.top1} if protocol == "nn1" else {"top1": result.top1,
                                                                "top5": result.top5}
    return {"summary": summary, "k": k, "train": {"dataset": train_c.name, "images": len(train[1])},
            "test": {"dataset": test_c.name, "images": len(test[1])}}


@stage("knn", KNNOptions)
def run_knn(ctx: EvalContext, o: KNNOptions) -> dict[str, Any]:
    """Weighted kNN accuracy (top-1, top-5) of frozen features."""
    return _neighbours(ctx, o, "knn", o.k, o.temperature)


@stage("nn1", NN1Options)
def run_nn1(ctx: EvalContext, o: NN1Options) -> dict[str, Any]:
    """1-nearest-neighbour cosine accuracy (STAR's monitor)."""
    return _neighbours(ctx, o, "nn1", 1, 0.1)


class LinearOptions(StageOptions, PROTOCOLS.get("linear").options):  # type: ignore[misc]
    """``linear`` options.

    Attributes:
        datasets: Datasets with ``train``, ``val`` and ``test`` splits (the 11 transfer
            datasets by default); each is reported with its usual metric, others with
            ``metric``.
        root: The folder holding every dataset's files (where an entry names none).
        in_domain: A dataset with ``train`` and ``test`` splits (``val_fraction`` of
            train is held out), reported apart from the mean.
        max_images: Use at most this many images of each split.
        splits: ``paper``: AugSelf's validation split sizes and seeds for the datasets
            it splits at random (`moeheads.eval.paper_splits`; the official training
            data, or an in-domain dataset's ``train``, is split), the dataset's own
            ``val`` otherwise; ``dataset``: every dataset's own ``train`` / ``val``.
        interpolation: Resizing of the evaluation images (``bicubic``: AugSelf's).
    """

    datasets: list[DatasetRef] = Field(default_factory=lambda: list(TRANSFER_SUITE))
    root: Path | None = None
    in_domain: DatasetRef | None = None
    max_images: int | None = Field(None, ge=1)
    splits: Literal["paper", "dataset"] = "paper"
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"

    @model_validator(mode="after")
    def _only_in_domain(self) -> LinearOptions:
        if "datasets" not in self.model_fields_set and self.root is None \
                and self.in_domain is not None:
            self.datasets = []  # only the in-domain dataset was named
            self.model_fields_set.add("datasets")
        return self

    def check(self) -> None:
        """Refuse data the user did not name (see :func:`check_named_data`)."""
        named = [*self.datasets, *([self.in_domain] if self.in_domain is not None else [])]
        check_named_data("linear", TRANSFER_SUITE, named, self.root,
                         "datasets" not in self.model_fields_set)


def _probe(ctx: EvalContext, o: LinearOptions, ref: DatasetRef, splits: tuple[str, ...]
           ) -> dict[str, Any]:
    name = as_component(ref).name
    paper_split_of = None
    if o.splits == "paper" and name in PAPER_SPLITS:
        # AugSelf's random split of the training data: trainval (or train in-domain), test
        paper_split_of = "trainval" if "val" in splits else "train"
        splits = (paper_split_of, "test")
    parts = [ctx.features(as_component(ref, o.root, s), o, o.max_images) for s in splits]
    options = core_options(o, "linear", "metric", "device")
    options["metric"] = TRANSFER_METRICS.get(name, o.metric)
    options["device"] = o.device or ctx.device
    train, test, *val = parts
    images = {s: len(p.labels) for s, p in zip(splits, parts, strict=True)}
    if paper_split_of is not None:
        train_idx, val_idx = paper_split(name, len(train.labels))
        features, labels = train.features, train.labels
        train = train._replace(features=features[train_idx], labels=labels[train_idx])
        val = [train._replace(features=features[val_idx], labels=labels[val_idx])]
        images = {"train": len(train_idx), "val": len(val_idx), "test": len(test.labels)}
    val_args = (val[0].features, val[0].labels) if val else ()
    result = linear_probe(train.features, train.labels, test.features, test.labels, *val_args,
                          **options)
    return {"metric": result.metric, "test_accuracy": result.test_accuracy,
            "val_accuracy": result.val_accuracy, "l2": result.l2, "variant": o.variant,
            "images": images}


@stage("linear", LinearOptions)
def run_linear(ctx: EvalContext, o: LinearOptions) -> dict[str, Any]:
    """Linear transfer: L2 swept on ``val``, refit on train + val, scored on ``test``."""
    components = [as_component(d, o.root) for d in o.datasets]
    details = {
        name: _probe(ctx, o, ref, ("train", "test", "val"))
        for name, ref in zip(unique_names(components), o.datasets, strict=True)
    }
    summary = {name: d["test_accuracy"] for name, d in details.items()}
    if details:
        summary["mean"] = sum(summary.values()) / len(summary)
    result: dict[str, Any] = {"summary": summary, "datasets": details}
    if o.in_domain is not None:
        name = as_component(o.in_domain).name
        result["in_domain"] = {name: _probe(ctx, o, o.in_domain, ("train", "test"))}
        summary[f"in-domain {name}"] = result["in_domain"][name]["test_accuracy"]
    return result


class FewShotOptions(StageOptions, PROTOCOLS.get("fewshot").options):  # type: ignore[misc]
    """``fewshot`` options.

    Attributes:
        datasets: Datasets to draw episodes from (the few-shot suite by default).
        root: The folder holding every dataset's files (where an entry names none).
        split: The split episodes are drawn from; ``None``: AugSelf's pool of each
            dataset (`moeheads.data.fewshot.PAPER_POOLS`: all CUB-200 and Plant
            Disease classes, FC100's test classes) for the ``paper`` variant, ``test``
            for ``fast``.
        shots: Support images per class; one evaluation per value.
        max_images: Use at most this many images of the split.
        interpolation: Resizing of the evaluation images (``bicubic``: AugSelf's).
    """

    datasets: list[DatasetRef] = Field(default_factory=lambda: list(FEWSHOT_SUITE))
    root: Path | None = None
    split: str | None = None
    shots: list[int] = Field(default_factory=lambda: [1, 5])  # type: ignore[assignment]
    max_images: int | None = Field(None, ge=1)
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"

    def check(self) -> None:
        """Refuse data the user did not name (see :func:`check_named_data`)."""
        check_named_data("fewshot", FEWSHOT_SUITE, self.datasets, self.root,
                         "datasets" not in self.model_fields_set)


@stage("fewshot", FewShotOptions)
def run_fewshot(ctx: EvalContext, o: FewShotOptions) -> dict[str, Any]:
    """N-way K-shot accuracy with a 95% confidence interval, per dataset and K."""
    def split_of(ref: DatasetRef) -> str:
        if o.split is not None:
            return o.split
        return PAPER_POOLS.get(as_component(ref).name, "test") if o.variant == "paper" else "test"

    components = [as_component(d, o.root, split_of(d)) for d in o.datasets]
    options = core_options(o, "fewshot", "shots")
    details: dict[str, dict[str, Any]] = {}
    summary: dict[str, float] = {}
    for name, component in zip(unique_names(components), components, strict=True):
        data = ctx.features(component, o, o.max_images)
        for shots in o.shots:
            result = fewshot_eval(data.features.to(ctx.device), data.labels.to(ctx.device),
                                  shots=shots, **options)
            key = f"{o.ways}-way {shots}-shot"
            details.setdefault(name, {})[key] = {"accuracy": result.accuracy, "ci95": result.ci95}
            summary[f"{name} {shots}-shot"] = result.accuracy
    for shots in o.shots:
        values = [summary[f"{name} {shots}-shot"] for name in details]
        if len(values) > 1:
            summary[f"mean {shots}-shot"] = sum(values) / len(values)
    return {"summary": summary, "datasets": details, "episodes": o.num_episodes}
