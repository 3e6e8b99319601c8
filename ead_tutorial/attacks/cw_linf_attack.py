"""The Carlini & Wagner L-infinity attack (Carlini & Wagner, 2017, Section VI.C), batched.

||delta||_inf is not smooth: its gradient touches only the largest coordinate, so
gradient descent on it swings between coordinates. C&W replace it with the penalty

    c f6(x0 + delta) + sum_i (|delta_i| - tau)^+,

which charges only the part of each change above tau. Each round solves this from
the previous solution (a warm start) and stops at the first iterate that succeeds with
every |delta_i| <= tau; then tau shrinks to 0.9 times the largest change actually used.
A round that fails even at the largest c ends the row; its last success is the answer.

Per-row state (tau, c, the warm start, Adam's moments) is held in tensors, and every
row moves through its rounds at its own pace (see ``rounds``).
"""

from __future__ import annotations

import torch

from ead_tutorial.attacks.rounds import RowRounds
from ead_tutorial.attacks.rows import per_row
from ead_tutorial.attacks.validation import check_attack_inputs, check_c_factor, check_counts, check_non_negative
from ead_tutorial.box import get_box
from ead_tutorial.objectives import f6, succeeded

ACCEPTANCES = ("package", "loss")
# C&W's code accepts a try once its loss falls below this times c.
REFERENCE_LOSS_LIMIT = 1e-4


def tau_penalty(delta: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """sum_i (|delta_i| - tau)^+ per row, for B x ... changes and float B thresholds."""
    return (delta.abs() - per_row(tau, delta)).clamp(min=0).flatten(1).sum(1)


def cw_linf(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *, kappa: float = 0.0,
            steps: int = 1000, lr: float = 5e-3, initial_c: float = 1e-5, largest_c: float = 20.0,
            c_factor: float = 2.0, initial_tau: float = 1.0, tau_factor: float = 0.9, smallest_tau: float = 1 / 256,
            box: str = "tanh", abort_early: bool = True, acceptance: str = "package",
            reset_between_tries: bool = True, max_rounds: int | None = None,
            discretize: bool = False, targeted: bool = True, true_labels: torch.Tensor | None = None,
            progress: bool = False, record: bool = False):
    """The C&W L-infinity attack: shrink tau while c f6 + sum (|delta_i| - tau)^+ can still be solved.

    Parameters
    ----------
    model : maps B x C x H x W images in [0, 1] to B x K logits; in eval mode, on the images' device
    images : float B x ... in [0, 1], the originals x0
    targets : int64 B, target classes (``targeted=True``) or true classes (``targeted=False``)
    kappa : confidence margin of f6
    steps : Adam iterations allowed per round and per value of c
    lr : Adam's step size
    initial_c : the first c of every row; c doubles whenever a round fails, and is kept between rounds
    largest_c : a row whose round fails with c above this is finished
    c_factor : how much c grows after a failed try (C&W double it)
    initial_tau : the first tau (1 allows any change in [0, 1])
    tau_factor : after a solved round, tau becomes this times min(tau, the largest change used)
    smallest_tau : a row stops once tau falls below this (1/256: below one 8-bit level)
    box : how the attack stays in [0, 1]: "tanh" (C&W), "projected" or "clipped"
    abort_early : end a try at one c once its loss stalls, instead of running all ``steps``
    acceptance : "package" (the first iterate that succeeds with every |delta_i| <= tau) or
        "loss" (C&W's code's test, the loss below 1e-4 c, with success checked on the same
        iterate; the code checks the iterate after the next step)
    reset_between_tries : start each try at a doubled c afresh from the round's start, with
        Adam's state cleared; False keeps both, as C&W's code does
    max_rounds : stop after this many rounds (None: when every row has finished)
    discretize : round the result to 8-bit pixels and repair any success that rounding broke
    true_labels : int64 B, optional; in the targeted mode a target may not equal it
    progress : show a progress bar over the rounds
    record : keep, in ``details``, every row's tau after every round

    Returns
    -------
    :class:`~ead_tutorial.attacks.AttackResult`; ``details`` holds "tau" (float B, each row's last
    tau), "rounds" (int64 B, solved rounds per row) and with ``record=True`` "tau_history"
    (every row's tau after each round of any row, a list of float B tensors).
    """
    check_non_negative(kappa=kappa, steps=steps, lr=lr, initial_c=initial_c, largest_c=largest_c,
                       initial_tau=initial_tau, smallest_tau=smallest_tau)
    check_counts(steps=steps)
    check_c_factor(c_factor)
    if acceptance not in ACCEPTANCES:
        raise ValueError(f"unknown acceptance {acceptance!r}; choose one of {', '.join(ACCEPTANCES)}")
    if not 0 < tau_factor < 1:
        raise ValueError(f"tau_factor must lie strictly between 0 and 1 so that tau shrinks, got {tau_factor}")
    encoding = get_box(box)
    check_attack_inputs(model, images, targets, targeted=targeted, true_labels=true_labels)
    images = images.detach()
    state = RowRounds.start(images, initial_c)
    c, rounds, best = state.c, state.rounds, state.best
    tau = torch.full((len(images),), float(initial_tau), device=images.device)
    history = []

    def image_of(w, rows):
        return encoding.to_image(w)

    def loss_of(x, logits, rows):  # c f6 + sum_i (|delta_i| - tau)^+
        return c[rows] * f6(logits, targets[rows], kappa, targeted) + tau_penalty(x - images[rows], tau[rows])

    def accept(x, logits, rows):  # success with every change within tau, or C&W's code's loss test
        if acceptance == "loss":
            small = loss_of(x, logits, rows) < REFERENCE_LOSS_LIMIT * c[rows]
            return small & succeeded(logits, targets[rows], kappa, targeted)
        within = (x - images[rows]).abs().flatten(1).amax(1) <= tau[rows]
        return within & succeeded(logits, targets[rows], kappa, targeted)

    def on_accept(rows, solutions):  # record the success, then shrink tau
        used = (solutions - images[rows]).abs().flatten(1).amax(1)
        best.update(rows, solutions, torch.ones_like(rows, dtype=torch.bool), used, c[rows])
        rounds[rows] += 1
        tau[rows] = tau_factor * torch.minimum(tau[rows], used)
        if record:
            history.append(tau.clone())
        go_on = tau[rows] >= smallest_tau
        return go_on if max_rounds is None else go_on & (rounds[rows] < max_rounds)

    result = state.run(model, targets, kappa=kappa, targeted=targeted, discretize=discretize,
                       progress="C&W Linf: iterations" if progress else None, encoding=encoding, image_of=image_of,
                       loss_of=loss_of, accept=accept, on_accept=on_accept, steps=steps, lr=lr, largest_c=largest_c,
                       factor=c_factor, abort_early=abort_early, reset_between_tries=reset_between_tries)
    result.details["tau"] = tau
    if record:
        result.details["tau_history"] = history
    return result
