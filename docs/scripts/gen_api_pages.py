"""Generate one API reference page per public moeheads module (run by mkdocs-gen-files)."""

from pathlib import Path

import mkdocs_gen_files

nav = mkdocs_gen_files.Nav()
root = Path(__file__).resolve().parents[2]
package = root / "moeheads"

for path in sorted(package.rglob("*.py")):
    module_path = path.relative_to(root).with_suffix("")
    parts = list(module_path.parts)
    if parts[-1] == "__main__" or any(p.startswith("_") and p != "__init__" for p in parts):
        continue
    if parts[-1] == "__init__":
        parts = parts[:-1]
    doc_path = Path("reference", *parts).with_suffix(".md")
    nav[tuple(parts)] = Path(*parts).with_suffix(".md").as_posix()
    with mkdocs_gen_files.open(doc_path, "w") as page:
        page.write(f"# `{'.'.join(parts)}`\n\n::: {'.'.join(parts)}\n")
    mkdocs_gen_files.set_edit_path(doc_path, path.relative_to(root))

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as summary:
    summary.writelines(nav.build_literate_nav())
