"""The built documentation renders docstrings as Markdown: no raw Sphinx roles, examples
as code blocks, cross-references as links."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RAW_ROLE = re.compile(r":(class|func|meth|mod|attr|data|exc|obj):(`|<code>)")
QUOTED_PROMPT = re.compile(r"<blockquote>(?:(?!</blockquote>).)*&gt;&gt;&gt;", re.DOTALL)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                   cwd=ROOT, env=env, check=True)
    return out


def pages(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text() for p in site.rglob("*.html")}


def test_no_raw_sphinx_roles(site: Path) -> None:
    bad = sorted(name for name, html in pages(site).items() if RAW_ROLE.search(html))
    assert not bad, f"raw :role:`...` text on {len(bad)} pages: {bad[:5]}"


def test_examples_are_code_blocks_not_quotes(site: Path) -> None:
    bad = sorted(name for name, html in pages(site).items() if QUOTED_PROMPT.search(html))
    assert not bad, f">>> inside a block quote on {len(bad)} pages: {bad[:5]}"
    heads = (site / "reference/moeheads/heads/mixture/index.html").read_text()
    assert re.search(r'<code><span class="gp">&gt;&gt;&gt; </span>', heads)


def test_roles_became_links(site: Path) -> None:
    heads = (site / "reference/moeheads/heads/mixture/index.html").read_text()
    assert re.search(r'<a [^>]*href="#moeheads\.heads\.mixture\.MoEHeads"[^>]*><code>MoEHeads'
                     r'</code>', heads)
    base = (site / "reference/moeheads/losses/base/index.html").read_text()
    assert 'href="../../errors/#moeheads.errors.ConfigError"' in base
