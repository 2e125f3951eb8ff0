"""The README's Python example runs as shown."""

import re
from pathlib import Path

import torch

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_snippet_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a Python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert namespace["z_inv"].shape == (256, 128) and namespace["z_eq"].shape == (256, 128)
    gates = namespace["gates"]
    assert gates.dtype == torch.float32
    torch.testing.assert_close(gates.sum(-1), torch.ones(256))
