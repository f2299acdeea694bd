"""q(x_t | x_0) by recursive reparameterization and induction over t (eqs. (59)-(70)).

SymPy derivations of paper section 2.1 (Variational Diffusion Models); see
`udm.derivations.vdm` for the whole section."""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import (
    ClosedForm,
    Derivation,
    Step,
    definition,
    gaussian_law,
)
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    eps,
    x_0,
    x_t,
)
from udm.derivations.vdm._common import ALPHA_BAR

# --- q(x_t | x_0) by recursive reparameterization, eqs. (59)-(70) ------------------------------

# Independent standard normals of the reparameterization (eqs. (59)-(66)).
eps_t, eps_prev = sp.symbols("epsilon_t^* epsilon_{t-1}^*", real=True)
x_t_minus_2 = sp.Symbol("x_{t-2}", real=True)
alpha_t_minus_1 = sp.Symbol("alpha_{t-1}", positive=True)


@register(59, 60, 61, 62, 63, 64, 65, 66)
def forward_two_steps() -> Derivation:
    """Two forward steps collapse into one Gaussian step, eqs. (59)-(66).

    x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps (eq. (59)), applied twice, has the law
    of sqrt(alpha_t alpha_{t-1}) x_{t-2} + sqrt(1 - alpha_t alpha_{t-1}) eps.
    """
    a, a1 = alpha_t, alpha_t_minus_1
    x_t_minus_1 = sp.Symbol("x_{t-1}", real=True)
    x_prev = sp.sqrt(a1) * x_t_minus_2 + sp.sqrt(1 - a1) * eps_prev  # eq. (60)
    noise = (eps_t, eps_prev)
    steps = [
        Step(x_t, "definition", "the sample x_t"),
        Step(
            sp.sqrt(a) * x_t_minus_1 + sp.sqrt(1 - a) * eps_t,
            "reparameterize",
            "one forward step (eq. (31)), reparameterized as in eq. (59)",
            eq=61,
        ),
        Step(
            sp.sqrt(a) * x_prev + sp.sqrt(1 - a) * eps_t,
            "substitute",
            "insert eq. (60) for x_{t-1}",
            eq=62,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2 + sp.sqrt(a - a * a1) * eps_prev + sp.sqrt(1 - a) * eps_t,
            "algebra",
            "expand",
            eq=63,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2
            + sp.sqrt(sp.sqrt(a - a * a1) ** 2 + sp.sqrt(1 - a) ** 2) * eps_prev,
            "sum_gaussians",
            "merge two independent Gaussians",
            eq=64,
            noise=noise,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2 + sp.sqrt(a - a * a1 + 1 - a) * eps_prev,
            "algebra",
            "square roots squared",
            eq=65,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2 + sp.sqrt(1 - a * a1) * eps_prev,
            "algebra",
            "cancel alpha_t",
            eq=66,
        ),
    ]
    return Derivation(
        "two forward steps are one Gaussian step",
        steps,
        facts=(
            definition(x_t_minus_1, x_prev, 31),
            definition(x_t, sp.sqrt(a) * x_t_minus_1 + sp.sqrt(1 - a) * eps_t, 31),
        ),
    )


def _step_law(x_from, alpha, n: int) -> Derivation:
    """The reparameterized step x = sqrt(alpha) x_from + sqrt(1 - alpha) eps has the law of
    q(x | x_from) = N(sqrt(alpha) x_from, 1 - alpha) (eq. (31)): line n."""
    e = sp.Symbol("epsilon", real=True)
    law = gaussian_law(sp.sqrt(alpha) * x_from + sp.sqrt(1 - alpha) * e, (e,))
    steps = [
        Step(sp.Tuple(*law), "definition", "(mean, variance) of the reparameterized sample"),
        Step(sp.Tuple(sp.sqrt(alpha) * x_from, 1 - alpha), "algebra", "those of eq. (31)", eq=n),
    ]
    return Derivation(f"the reparameterized step of eq. ({n})", steps, equations=(n,))


@register(59)
def forward_step_sample() -> Derivation:
    """x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps is a draw of q(x_t | x_{t-1}), eq. (59)."""
    return _step_law(sp.Symbol("x_{t-1}", real=True), alpha_t, 59)


@register(60)
def previous_step_sample() -> Derivation:
    """x_{t-1} = sqrt(alpha_{t-1}) x_{t-2} + sqrt(1 - alpha_{t-1}) eps, eq. (60): the step before."""
    return _step_law(x_t_minus_2, alpha_t_minus_1, 60)


def _forward_marginal_results():
    """The closed forms of q(x_t | x_0): mean and variance (eq. (70)), the sample (eq. (69))."""
    domains = {"x_0": "real", "alpha_bar_t": "unit", "eps": "real"}
    return (
        ClosedForm(
            "q_mean",
            (70,),
            sp.sqrt(alpha_bar_t) * x_0,
            ("x_0", "alpha_bar_t"),
            domains,
            "Mean of q(x_t | x_0)",
            lhs=r"\mathbb{E}[x_t \mid x_0]",
            line=70,
            component=0,
        ),
        ClosedForm(
            "q_var",
            (70,),
            1 - alpha_bar_t,
            ("alpha_bar_t",),
            domains,
            "Variance of q(x_t | x_0) (per coordinate)",
            lhs=r"\mathrm{Var}[x_t \mid x_0]",
            line=70,
            component=1,
        ),
        ClosedForm(
            "q_sample",
            (69,),
            sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps,
            ("x_0", "alpha_bar_t", "eps"),
            domains,
            "Reparameterized sample of q(x_t | x_0) from standard normal noise eps",
            lhs="x_t",
            line=69,
        ),
    )


@register(67, 68, 69, 70)
def forward_marginal() -> Derivation:
    """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), eqs. (67)-(70), by induction.

    Base case t = 1: alpha_bar_1 = alpha_1 and the claim is eq. (59). Inductive step: if
    x_{t-1} = sqrt(alpha_bar_{t-1}) x_0 + sqrt(1 - alpha_bar_{t-1}) eps', one more step
    (eq. (59)) gives the claim at t, using alpha_bar_t = alpha_t alpha_bar_{t-1}.
    """
    eps_step, eps_hist = sp.symbols("epsilon epsilon'", real=True)
    x_prev = sp.sqrt(alpha_bar_prev) * x_0 + sp.sqrt(1 - alpha_bar_prev) * eps_hist
    steps = [
        Step(
            sp.sqrt(alpha_t) * x_prev + sp.sqrt(1 - alpha_t) * eps_step,
            "definition",
            "one step (eq. (59)) from the induction hypothesis at t - 1",
        ),
        Step(
            sp.sqrt(alpha_t * alpha_bar_prev) * x_0
            + sp.sqrt(alpha_t * (1 - alpha_bar_prev) + 1 - alpha_t) * eps,
            "sum_gaussians",
            "merge the two independent noises",
            noise=(eps_step, eps_hist, eps),
            eq=68,
        ),
        Step(
            sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps,
            "algebra",
            "alpha_bar_t = alpha_t alpha_bar_{t-1}",
            eq=69,
        ),
    ]
    results = _forward_marginal_results()
    return Derivation(
        "q(x_t | x_0) by induction over t",
        steps,
        facts=(ALPHA_BAR,),
        results=results[2:],  # the law (first two) is tied to eq. (70) below
    )


@register(70)
def forward_marginal_law() -> Derivation:
    """The law of the sample of eq. (69): q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t), eq. (70).

    Mean and variance of an expression linear in standard normal noise, as the engine reads
    them off (`gaussian_law`).
    """
    sample = sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps
    steps = [
        Step(sp.Tuple(*gaussian_law(sample, (eps,))), "definition", "(mean, variance) of eq. (69)"),
        Step(sp.Tuple(sp.sqrt(alpha_bar_t) * x_0, 1 - alpha_bar_t), "algebra", "", eq=70),
    ]
    return Derivation("the law of q(x_t | x_0)", steps, results=_forward_marginal_results()[:2])


@register(69)
def alpha_bar_recursion() -> Derivation:
    """alpha_bar_t = prod_{i=1}^t alpha_i (defined with eq. (69)) = alpha_t alpha_bar_{t-1}.

    Peel the last factor off the product (the `evaluate` rule's product step).
    """
    i, t = sp.symbols("i t", integer=True, positive=True)
    alpha = sp.Function("alpha", positive=True)
    steps = [
        Step(sp.Product(alpha(i), (i, 1, t)), "definition", "alpha_bar_t"),
        Step(alpha(t) * sp.Product(alpha(i), (i, 1, t - 1)), "evaluate", "alpha_t alpha_bar_{t-1}"),
    ]
    return Derivation("alpha_bar_t = alpha_t alpha_bar_{t-1}", steps)
