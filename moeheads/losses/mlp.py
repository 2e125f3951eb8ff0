"""The small MLPs the losses own (predictors): ``[Linear(no bias)-BN-ReLU] x k - Linear``."""

from __future__ import annotations

from torch import nn

from moeheads.errors import ConfigError


def mlp(
    in_features: int, hidden_features: int, out_features: int, num_hidden: int = 2
) -> nn.Sequential:
    """``num_hidden`` blocks ``Linear(no bias)-BatchNorm1d-ReLU``, then ``Linear`` with bias.

    Example:
        >>> [type(m).__name__ for m in mlp(256, 512, 128)]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    """
    if min(in_features, hidden_features, out_features) < 1 or num_hidden < 0:
        raise ConfigError(
            f"predictor sizes must be >= 1 (in {in_features}, hidden {hidden_features}, "
            f"out {out_features})"
        )
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(num_hidden):
        layers += [nn.Linear(width, hidden_features, bias=False), nn.BatchNorm1d(hidden_features)]
        layers.append(nn.ReLU())
        width = hidden_features
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)
