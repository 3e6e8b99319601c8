"""Outputs of every attack with abort early off, on fixed rows: the reference that tests/test_engine.py compares with.

Made with the engine before its rows were compacted and its checks skipped; run it again
(python tests/data/make_engine_reference.py tests/data/engine_reference.pt) only when a change
is meant to alter what the attacks compute, and say so in the commit.
"""
import sys, torch
torch.set_num_threads(1)
from ead_tutorial.attacks import cw_l0, cw_l2, cw_linf, ead
from ead_tutorial.data import sample_correct, with_all_targets
from ead_tutorial.models import pretrained
model = pretrained("mnist")
x, y = sample_correct(model, 1, seed=5)
images, targets, index = with_all_targets(x, y)
images, targets = images[:4], targets[:4]
runs = {
 "cw_l2": lambda: cw_l2(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False, box="projected"),
 "cw_l2_tanh_restart": lambda: cw_l2(model, images, targets, search_steps=2, steps=80, initial_c=10.0, abort_early=False, restarts=1),
 "ead_en": lambda: ead(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False, rule="en"),
 "ead_l1": lambda: ead(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False, rule="l1"),
 "ead_ista_l1": lambda: ead(model, images, targets, search_steps=3, steps=60, initial_c=1.0, abort_early=False, rule="l1", fista=False),
 "cw_l0": lambda: cw_l0(model, images, targets, steps=60, lr=0.05, initial_c=1.0, largest_c=4.0, box="projected", abort_early=False, max_rounds=4),
 "cw_linf": lambda: cw_linf(model, images, targets, steps=60, lr=0.01, initial_c=0.1, largest_c=0.4, box="projected", abort_early=False, max_rounds=4),
}
out = {}
for name, run in runs.items():
    r = run()
    out[name] = {"adversarial": r.adversarial, "success": r.success, "c": r.c, "evaluations": r.gradient_evaluations}
    print(name, r.success.tolist(), r.gradient_evaluations.tolist(), r.norms["L2"].tolist())
torch.save(out, sys.argv[1])
