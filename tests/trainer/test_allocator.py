"""use_huge_pages: a training step's large buffers fault in 2 MB at a time, not 4 KB."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

# A step like fine-tuning's: a 64 MB score matrix over all items, its softmax and gradients. Prints the page faults
# of the last 4 of 8 steps.
SCRIPT = """
import resource, sys
from trainer.allocator import use_huge_pages

if sys.argv[1] == "huge":
    assert use_huge_pages()
import torch

torch.set_num_threads(1)
torch.manual_seed(0)
queries = torch.randn(3200, 64, requires_grad=True)
items = torch.randn(5000, 64, requires_grad=True)
targets = torch.randint(0, 5000, (3200,))
for step in range(8):
    if step == 4:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.nn.functional.cross_entropy(queries @ items.T, targets).backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _late_step_faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, env=env)
    return int(done.stdout)


# Under `always` every large mapping gets huge pages anyway; under `never` none does.
@pytest.mark.skipif(not THP.exists() or "[madvise]" not in THP.read_text(), reason="needs THP in madvise mode")
def test_a_training_steps_large_buffers_fault_in_huge_pages():
    default, huge = _late_step_faults("default"), _late_step_faults("huge")
    assert default > 4 * 16_384  # at least a 64 MB buffer (16,384 pages of 4 KB) faulted in anew each step
    assert huge < default / 10


def test_huge_pages_cannot_be_asked_for_once_torch_is_imported():
    script = "import torch\nfrom trainer.allocator import use_huge_pages\nassert not use_huge_pages()"
    subprocess.run([sys.executable, "-c", script], check=True)


SETTING_SCRIPT = """
import os, sys
from trainer.allocator import use_huge_pages

if sys.argv[1] == "after-torch":
    import torch  # noqa: F401
print(use_huge_pages(), os.environ.get("THP_MEM_ALLOC_ENABLE"))
"""


@pytest.mark.parametrize(
    ("case", "user_value", "printed"),
    [("before-torch", None, "True 1"), ("before-torch", "0", "True 0"), ("after-torch", None, "False None")],
)
def test_the_setting_is_made_before_torch_loads_and_a_users_value_stays(case, user_value, printed):
    """On any kernel: the fault counts above need THP in madvise mode."""
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if user_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = user_value
    done = subprocess.run([sys.executable, "-c", SETTING_SCRIPT, case], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == printed, done.stderr
