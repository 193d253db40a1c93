"""keep_freed_memory: the buffers of a training step are reused from the heap instead of faulted in anew each step."""

import subprocess
import sys

import pytest

# A step like fine-tuning's: a 64 MB score matrix over all items, its softmax and gradients. Prints the page faults
# of the last 4 of 16 steps, once the heap has grown to what a step needs.
SCRIPT = """
import resource, sys
import torch
from trainer.allocator import keep_freed_memory

torch.set_num_threads(1)
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
queries = torch.randn(3200, 64, requires_grad=True)
items = torch.randn(5000, 64, requires_grad=True)
targets = torch.randint(0, 5000, (3200,))
for step in range(16):
    if step == 12:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.nn.functional.cross_entropy(queries @ items.T, targets).backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _late_step_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_training_steps_buffers_are_reused_without_faulting_their_pages_in_again():
    default, kept = _late_step_faults("default"), _late_step_faults("keep")
    assert default > 4 * 16_384  # at least a 64 MB buffer (16,384 pages) unmapped and faulted in again each step
    assert kept < default / 20
