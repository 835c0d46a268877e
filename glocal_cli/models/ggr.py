"""Global Graph Reasoning (paper Eq. 2-4).

Per-region style codes ``ST (B, N, S)`` come from masked average pooling of the style features over
the source parsing ``Ss``. A spatial graph convolution over the body-region graph (ST-GCN
"spatial" partition: root / nearer / farther from the gravity centre, a weight per subset,
normalisation by the subset size ``Z``) reasons codes ``ST_oc`` for occluded areas. Visible areas
of each target region (``Sg * m_vis``) get their own region's per-style-convolved code; occluded
areas (``Sg * (1 - m_vis)``) get the graph code; a region absent from the source takes the graph code
everywhere. The broadcast condition map gives ``gamma, beta`` and ``Fo = gamma * BN(F_I) + beta``.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F
from torch import nn

REGIONS = ("background", "hair", "upper", "lower", "shoes", "face", "arms", "legs")
"""The 8 canonical semantic classes (graph nodes), in label order."""

BODY_EDGES = (("hair", "face"), ("face", "upper"), ("upper", "arms"), ("upper", "lower"),
              ("lower", "legs"), ("legs", "shoes"))
"""Body connectivity between regions; background is isolated."""


def hop_distances(centre: str) -> list[float]:
    """``e_i``: hop distance of every region to the gravity-centre region (inf when unreachable)."""
    idx = {name: i for i, name in enumerate(REGIONS)}
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(REGIONS))}
    for a, b in BODY_EDGES:
        neighbours[idx[a]].append(idx[b])
        neighbours[idx[b]].append(idx[a])
    dist = [float("inf")] * len(REGIONS)
    dist[idx[centre]] = 0.0
    queue = deque([idx[centre]])
    while queue:
        node = queue.popleft()
        for nb in neighbours[node]:
            if dist[nb] == float("inf"):
                dist[nb] = dist[node] + 1
                queue.append(nb)
    return dist


def body_graph_partition(centre: str = "upper") -> torch.Tensor:
    """Spatial-partition adjacency ``(3, N, N)``: ``A[k, i, j] = 1`` iff ``j`` is in ``B(i)`` and ``r_i(j) = k``.

    ``B(i)`` is ``i`` and its graph neighbours (D = 1); ``r_i(j)`` is 0 if ``e_j = e_i`` (root),
    1 if ``e_j < e_i`` (nearer the centre), 2 if ``e_j > e_i`` (farther), Eq. 3.
    """
    n = len(REGIONS)
    idx = {name: i for i, name in enumerate(REGIONS)}
    e = hop_distances(centre)
    adj = torch.eye(n)
    for a, b in BODY_EDGES:
        adj[idx[a], idx[b]] = adj[idx[b], idx[a]] = 1.0
    part = torch.zeros(3, n, n)
    for i in range(n):
        for j in range(n):
            if adj[i, j]:
                k = 0 if e[j] == e[i] else (1 if e[j] < e[i] else 2)
                part[k, i, j] = 1.0
    return part


def region_average_pool(features: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked average pooling: ``features (B,C,h,w)``, ``masks (B,N,h,w)`` -> codes ``(B,N,C)``, present ``(B,N)``."""
    masks = masks.to(features.dtype)
    area = masks.sum(dim=(2, 3))  # (B, N)
    codes = torch.einsum("bchw,bnhw->bnc", features, masks) / area.clamp_min(1e-6).unsqueeze(-1)
    present = (area > 1e-6).to(features.dtype)
    return codes * present.unsqueeze(-1), present


class SpatialGraphConv(nn.Module):
    """Propagation steps of Eq. 2 over the partitioned body graph, skipping nodes absent from the source.

    One step: ``X'_i = lrelu(sum_k sum_{j in B_k(i), present} X_j W_k / Z_ik + b)`` where ``Z_ik``
    counts the present nodes of subset ``k``; a node becomes present once any node of ``B(i)`` is.
    """

    def __init__(self, channels: int, steps: int, centre: str) -> None:
        super().__init__()
        self.register_buffer("partition", body_graph_partition(centre), persistent=False)
        self.weight = nn.Parameter(torch.randn(steps, 3, channels, channels) / channels**0.5)
        self.bias = nn.Parameter(torch.zeros(steps, channels))

    def forward(self, codes: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``codes (B,N,S)``, ``present (B,N)`` -> reasoned codes ``(B,N,S)`` and the new presence."""
        part = self.partition.to(codes.dtype)
        x, p = codes, present
        for step in range(self.weight.shape[0]):
            a = part.unsqueeze(0) * p[:, None, None, :]  # (B, 3, N, N)
            a = a / a.sum(-1, keepdim=True).clamp_min(1.0)  # 1 / Z_i(v_j)
            msg = torch.einsum("bkij,bjc,kcd->bid", a, x, self.weight[step].to(codes.dtype))
            p = (torch.einsum("kij,bj->bi", part, p) > 0).to(codes.dtype)
            x = F.leaky_relu(msg + self.bias[step].to(codes.dtype), 0.2) * p.unsqueeze(-1)
        return x, p


class GlobalGraphReasoning(nn.Module):
    """GGR (Eq. 2-4). ``use_graph=False`` is the "w/o GGR" ablation: every target area gets its own
    region's code (no occluded/visible distinction, no graph); absent regions get nothing."""

    def __init__(self, channels: int, style_channels: int, num_classes: int = 8, steps: int = 3,
                 centre: str = "upper", norm: str = "batch", use_graph: bool = True, hidden: int = 128) -> None:
        super().__init__()
        if num_classes != len(REGIONS):
            raise ValueError(f"GGR needs the {len(REGIONS)} canonical regions, got num_classes = {num_classes}")
        s = style_channels
        self.use_graph = use_graph
        # per-style convolution: a 1x1 conv per region, applied to that region's code
        self.own_weight = nn.Parameter(torch.randn(num_classes, s, s) / s**0.5)
        self.own_bias = nn.Parameter(torch.zeros(num_classes, s))
        if use_graph:
            self.graph = SpatialGraphConv(s, steps, centre)
            self.graph_out = nn.Linear(s, s)
        self.shared = nn.Sequential(nn.Conv2d(s, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.to_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.to_beta = nn.Conv2d(hidden, channels, 3, padding=1)
        self.norm = (nn.BatchNorm2d(channels, affine=False) if norm == "batch"
                     else nn.InstanceNorm2d(channels, affine=False))

    def region_codes(self, codes: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(visible-area codes, occluded-area codes), each ``(B, N, S)``."""
        own = torch.einsum("bns,nst->bnt", codes, self.own_weight.to(codes.dtype)) + self.own_bias.to(codes.dtype)
        pres = present.unsqueeze(-1)
        if not self.use_graph:
            own = own * pres
            return own, own
        reasoned, _ = self.graph(codes, present)
        occluded = self.graph_out(reasoned)
        visible = own * pres + occluded * (1 - pres)  # absent source region: filled from the graph
        return visible, occluded

    def condition_map(self, style_feat: torch.Tensor, source_parsing: torch.Tensor, target_parsing: torch.Tensor,
                      visibility: torch.Tensor) -> torch.Tensor:
        """Broadcast codes to the target layout: ``(B, S, h, w)``; all maps at the feature resolution."""
        codes, present = region_average_pool(style_feat, source_parsing)
        visible, occluded = self.region_codes(codes, present)
        sg = target_parsing.to(style_feat.dtype)
        vis = visibility.to(style_feat.dtype)
        cond = torch.einsum("bnhw,bns->bshw", sg * vis, visible)
        return cond + torch.einsum("bnhw,bns->bshw", sg * (1 - vis), occluded)

    def forward(self, fused: torch.Tensor, style_feat: torch.Tensor, source_parsing: torch.Tensor,
                target_parsing: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        """``Fo = (1 + gamma) * BN(F_I) + beta`` (Eq. 4; the 1 is a fixed offset of gamma's bias)."""
        hidden = self.shared(self.condition_map(style_feat, source_parsing, target_parsing, visibility))
        return self.norm(fused) * (1 + self.to_gamma(hidden)) + self.to_beta(hidden)
