"""Local Structure Transfer (paper Eq. 5-8): self-correlation, kernel prediction, unbalanced OT, LocConv.

Eq. 7 (docs/design.md): with uniform probability masses ``alpha_i = 1/n``, ``beta_j = 1/m`` and the
unbalanced plan ``P``, the aligned filter at target ``j`` is ``f_hat_j = sum_i P_ij f_i / beta_j``
(``lst_plan_norm: mass``, the paper's ``TP f`` per unit of nominal target mass). A target that
receives less than its mass ``beta_j`` gets a proportionally smaller filter and bias; ``received``
divides by the mass actually received instead (a convex combination at every target).

Kernel-prediction shortcut: the predictor ends in a linear 1x1 layer ``f = W h + c``, so
``sum_i A_ij f_i = W (sum_i A_ij h_i) + c * sum_i A_ij`` exactly for any plan ``A``: we transport
the ``lst_hidden`` features (and the column sums ``s_j = sum_i A_ij``) instead of the
``C*k*k + C`` filter/bias values and predict the filters at the target positions afterwards.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli.models.config import ModelConfig


class SelfCorrelation(nn.Module):
    """Eq. 5: ``c(i, j) = sum_{p in [-r,r]^2} <F(i+p), F(j+p)>`` for ``||i - j||_inf <= d``.

    Output ``(B, (2d+1)^2, H, W)``, channel ``(dy + d) * (2d+1) + (dx + d)`` for ``j = i + (dy, dx)``;
    positions outside the map are zero (zero padding).
    """

    def __init__(self, r: int, d: int) -> None:
        super().__init__()
        self.r, self.d = r, d

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        b, c, h, w = feat.shape
        n = 2 * self.d + 1
        shifted = F.unfold(feat, n, padding=self.d).view(b, c, n * n, h, w)  # F(i + delta)
        prod = (feat.unsqueeze(2) * shifted).sum(1)  # (B, n*n, H, W): <F(x), F(x + delta)>
        if self.r == 0:
            return prod
        k = 2 * self.r + 1
        return F.avg_pool2d(prod, k, stride=1, padding=self.r, count_include_pad=True) * (k * k)


class UnbalancedSinkhorn(nn.Module):
    """Batched log-domain entropic unbalanced OT (Eq. 6 with KL-relaxed marginals), fixed iterations.

    Solves ``min_P <C, P> + eps * KL(P | a b^T) + tau * KL(P 1 | a) + tau * KL(P^T 1 | b)``: exactly
    POT's ``ot.unbalanced.sinkhorn_unbalanced(a, b, C, reg=eps, reg_m=tau, reg_type='kl',
    method='sinkhorn', numItermax=iters, stopThr=0)`` (same scaling updates, u first, from u = v = 1),
    in float32 even under autocast. Returns ``log P (B, n, m)``.

    The potentials ``log u, log v`` are always kept in the log domain. When the caller guarantees
    ``0 <= C <= cost_bound`` with ``cost_bound / eps <= 80`` (the cosine cost of LST is bounded by 2),
    each log-sum-exp over the matrix is computed as ``max + log(exp(-C/eps) @ exp(shifted potential))``:
    the same value, with the shift taken on the vector only (the kernel stays within float32 range),
    and a batched mat-vec instead of a full-matrix log-sum-exp. Otherwise the plain log-sum-exp is used.
    """

    MAX_EXPONENT = 80.0
    """Largest ``cost_bound / eps`` for which ``exp(-C/eps)`` is safely representable in float32."""

    def __init__(self, iters: int = 20, epsilon: float = 0.05, tau: float = 1.0,
                 cost_bound: float | None = None) -> None:
        super().__init__()
        self.iters, self.epsilon, self.tau, self.cost_bound = iters, epsilon, tau, cost_bound

    @property
    def uses_kernel_product(self) -> bool:
        """Whether the stabilised kernel-product path is used (see the class docstring)."""
        return self.cost_bound is not None and self.cost_bound / self.epsilon <= self.MAX_EXPONENT

    def forward(self, cost: torch.Tensor, a: torch.Tensor | None = None, b: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(device_type=cost.device.type, enabled=False):
            cost = cost.float() if cost.dtype not in (torch.float32, torch.float64) else cost
            bsz, n, m = cost.shape
            log_a = (cost.new_full((bsz, n), -math.log(n)) if a is None else a.to(cost.dtype).log())
            log_b = (cost.new_full((bsz, m), -math.log(m)) if b is None else b.to(cost.dtype).log())
            fi = self.tau / (self.tau + self.epsilon)
            log_u = torch.zeros_like(log_a)
            log_v = torch.zeros_like(log_b)
            scaled = -cost / self.epsilon  # log of the Gibbs kernel without the marginal factor
            if self.uses_kernel_product:
                kernel = scaled.exp()  # (B, n, m), entries in [exp(-80), 1]
                kernel_t = kernel.transpose(1, 2)
                for _ in range(self.iters):
                    # log sum_j K_ij a_i b_j v_j = log a_i + LSE_j(-C_ij/eps + log b_j + log v_j)
                    log_u = fi * (-_lse_matvec(kernel, log_b + log_v))
                    log_v = fi * (-_lse_matvec(kernel_t, log_a + log_u))
            else:
                for _ in range(self.iters):
                    log_u = fi * (-torch.logsumexp(scaled + (log_b + log_v).unsqueeze(1), dim=2))
                    log_v = fi * (-torch.logsumexp(scaled + (log_a + log_u).unsqueeze(2), dim=1))
            return (log_a + log_u).unsqueeze(2) + scaled + (log_b + log_v).unsqueeze(1)


def _lse_matvec(kernel: torch.Tensor, log_x: torch.Tensor) -> torch.Tensor:
    """``log(kernel @ exp(log_x))`` per batch, shifting by ``max(log_x)`` (kernel ``(B,n,m)``, ``log_x (B,m)``)."""
    shift = log_x.amax(dim=1, keepdim=True)
    return shift + torch.bmm(kernel, (log_x - shift).exp().unsqueeze(2)).squeeze(2).log()


def cosine_cost(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``C_ij = 1 - cos(s_i, o_j)`` for ``source (B,C,n...)``, ``target (B,C,m...)`` -> ``(B, n, m)`` float32."""
    with torch.autocast(device_type=source.device.type, enabled=False):
        s = F.normalize(source.flatten(2).float(), dim=1, eps=1e-6)
        o = F.normalize(target.flatten(2).float(), dim=1, eps=1e-6)
        return 1 - torch.bmm(s.transpose(1, 2), o)


def channel_normalize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(x - mu) / sigma`` with the per-sample, per-channel mean and std over positions (Eq. 8)."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mu) * torch.rsqrt(var + eps)


class LocConv(nn.Module):
    """Eq. 8: per-position, per-channel ``k x k`` filtering plus bias, via ``unfold``.

    ``filters (B, C, k*k, H, W)`` are cross-correlation taps in ``conv2d`` order; ``bias (B, C, H, W)``.
    With ``normalize`` the input is channel-normalised first (the paper's ``(Fo - mu) / sigma``).
    """

    def __init__(self, k: int, normalize: bool = True) -> None:
        super().__init__()
        self.k, self.normalize = k, normalize

    def forward(self, x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = channel_normalize(x)
        b, c, h, w = x.shape
        patches = F.unfold(x, self.k, padding=self.k // 2).view(b, c, self.k * self.k, h, w)
        return (patches * filters.to(x.dtype)).sum(2) + bias.to(x.dtype)


class LocalStructureTransfer(nn.Module):
    """LST: ``(F_s, F_o) -> F_g``; also returns the transport plan for inspection."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.width(cfg.num_downsample)
        self.channels, self.k, self.pool = c, cfg.lst_k, cfg.lst_pool
        self.r = cfg.lst_r
        self.corr_proj = nn.Conv2d(c, cfg.lst_corr_channels, 1)
        self.self_correlation = SelfCorrelation(cfg.lst_r, cfg.lst_d)
        n_corr = (2 * cfg.lst_d + 1) ** 2
        self.predictor_hidden = nn.Sequential(
            nn.Conv2d(n_corr, cfg.lst_hidden, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(cfg.lst_hidden, cfg.lst_hidden, 1), nn.LeakyReLU(0.2, True),
        )
        self.predictor_out = nn.Conv2d(cfg.lst_hidden, c * cfg.lst_k**2 + c, 1)  # the final linear layer
        with torch.no_grad():  # start close to the identity LocConv: a delta filter, zero bias
            self.predictor_out.weight.mul_(0.1)
            init = torch.zeros(c, cfg.lst_k**2)
            init[:, cfg.lst_k**2 // 2] = 1.0
            self.predictor_out.bias.copy_(torch.cat([init.flatten(), torch.zeros(c)]))
        self.sinkhorn = UnbalancedSinkhorn(cfg.sinkhorn_iters, cfg.sinkhorn_epsilon, cfg.sinkhorn_tau,
                                            cost_bound=2.0)
        self.locconv = LocConv(cfg.lst_k, normalize=True)
        self.plan_norm = cfg.lst_plan_norm

    def local_structure(self, source_feat: torch.Tensor) -> torch.Tensor:
        """``F_c``: self-correlation of the channel-L2-normalised projected source, divided by the patch size."""
        proj = F.normalize(self.corr_proj(source_feat), dim=1, eps=1e-6)
        return self.self_correlation(proj) / (2 * self.r + 1) ** 2

    def alignment(self, source_feat: torch.Tensor, generated_feat: torch.Tensor) -> torch.Tensor:
        """Eq. 7's plan ``A (B, n_source, n_target)``, float32, normalised per ``lst_plan_norm``.

        ``mass``: ``A_ij = P_ij / beta_j`` (``beta_j = 1/m``), so the column sum ``s_j`` is the mass
        target ``j`` received per unit of its nominal mass (``0 < s_j``, 1 for balanced OT).
        ``received``: ``A_ij = P_ij / sum_i P_ij`` (every column sums to 1).
        """
        log_plan = self.sinkhorn(cosine_cost(source_feat, generated_feat))
        if self.plan_norm == "received":
            return torch.softmax(log_plan, dim=1)
        return (log_plan + math.log(log_plan.shape[2])).exp()

    def predict(self, hidden: torch.Tensor, mass: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Final linear layer: hidden ``(B, hid, H, W)`` -> filters ``(B, C, k*k, H, W)``, bias ``(B, C, H, W)``.

        ``mass (B, 1, H, W)`` multiplies the layer's constant term (``c * s_j`` in the module docstring):
        the transported ``hidden`` is ``sum_i A_ij h_i``, and ``sum_i A_ij (W h_i + c) = W hidden + c s_j``.
        """
        if mass is None:
            params = self.predictor_out(hidden)
        else:
            params = F.conv2d(hidden, self.predictor_out.weight)
            params = params + self.predictor_out.bias.to(params.dtype).view(1, -1, 1, 1) * mass.to(params.dtype)
        b, _, h, w = params.shape
        ck = self.channels * self.k * self.k
        return params[:, :ck].reshape(b, self.channels, self.k * self.k, h, w), params[:, ck:]

    def forward(self, source_feat: torch.Tensor, generated_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, o = source_feat, generated_feat
        if self.pool > 1:
            s, o = F.avg_pool2d(s, self.pool), F.avg_pool2d(o, self.pool)
        hidden = self.predictor_hidden(self.local_structure(s))  # (B, hid, hs, ws) at source positions
        plan = self.alignment(s, o)  # (B, n, n) float32
        b, hid, hs, ws = hidden.shape
        aligned = torch.bmm(hidden.flatten(2).float(), plan).to(hidden.dtype).view(b, hid, hs, ws)  # Eq. 7
        mass = None if self.plan_norm == "received" else plan.sum(1).view(b, 1, hs, ws)
        if self.pool > 1:
            aligned = F.interpolate(aligned, size=generated_feat.shape[-2:], mode="nearest")
            mass = None if mass is None else F.interpolate(mass, size=generated_feat.shape[-2:], mode="nearest")
        filters, bias = self.predict(aligned, mass)
        return self.locconv(generated_feat, filters, bias), plan
