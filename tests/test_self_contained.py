"""Nothing in the repository points outside it.

The project is cloned on its own, by other hubs too: a link to a folder beside the checkout, or a
web page a reader must trust to still say the same thing, breaks silently. So the only file that
may name the team's shared folder is `.ci/run` (the CI runner that knows it sits beside the
clone), and the Markdown pages link only to files in the repository; outside sources are cited
in plain text.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The shared folder beside a clone, named by a relative path (`..` then `shared`) or by one of
# its chart or design folders; `config_shared.py` and prose about shared pools do not match.
SHARED_REFERENCE = re.compile(
    r"\.\./shared\b|(?<![\w.-])shared/(?:charts?|chart-schemas|DESIGN|STYLE)\b"
)
ALLOWED_TO_NAME_SHARED = {".ci/run"}


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [name for name in listed.split("\0") if name]


def shared_references(text: str) -> list[str]:
    """`line N: text` for each line of `text` that names the shared folder."""
    return [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if SHARED_REFERENCE.search(line)
    ]


def test_only_the_ci_runner_names_the_shared_folder() -> None:
    found = {}
    for name in tracked_files():
        path = ROOT / name
        if name in ALLOWED_TO_NAME_SHARED or not path.is_file():
            continue
        hits = shared_references(path.read_bytes().decode("utf-8", errors="replace"))
        if hits:
            found[name] = hits
    assert found == {}
    # The pattern does find what the runner legitimately says.
    assert shared_references((ROOT / ".ci" / "run").read_text())


# Split so that this file does not name the folder itself.
UP, SHARED = "../", "shared"


@pytest.mark.parametrize(
    ("line", "names_it"),
    [
        (f"charts default to {UP}{SHARED}/charts", True),
        (f"see {UP}{UP}{UP}{SHARED}/DESIGN.md", True),
        (f"read from {SHARED}/chart-schemas/jupyterhub", True),
        (f"beside the clone in {UP}{SHARED}", True),
        ("from pangeo_binder.config_shared import NodePool", False),
        ("schedulers run on the shared user pool", False),
        ('"kubernetes.io/cluster/x": "shared"', False),
    ],
)
def test_the_shared_pattern(line: str, names_it: bool) -> None:
    assert bool(shared_references(line)) is names_it


# --- Markdown links -------------------------------------------------------------------------

PAGE_GLOBS = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "docs/**/*.md", "examples/**/*.md")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A code span: a run of backticks closed by a run of the same length, within one paragraph.
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
BRACKETED = r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
INLINE_LINK = re.compile(BRACKETED + r"\(\s*(<[^>]*>|[^)\s]*)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*)>")
HTML_TARGET = re.compile(r"\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
BARE_URL = re.compile(r"https?://[^\s)>\]|]*", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose(text: str) -> str:
    """`text` with fenced code blocks and code spans blanked out, line breaks kept (so offsets
    still give line numbers)."""
    lines, fence = [], None
    for line in text.split("\n"):
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
            lines.append("")
        elif fence is not None:
            closes = (
                opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence)
            )
            if closes and not line.strip().strip(fence[0]):
                fence = None
            lines.append("")
        else:
            lines.append(line)
    blank = "\n".join(lines)
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), blank)


def target_problem(page: Path, target: str) -> str | None:
    """Why `target`, a link target on `page`, leaves the repository or points at nothing."""
    target = target.strip("<>")
    if SCHEME.match(target):
        return "links outside the repository"
    if target.startswith("/"):
        return "is an absolute path"
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not path:
        return None  # an anchor on the same page
    resolved = (page.parent / path).resolve()
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if not resolved.exists():
        return "points at nothing"
    return None


def link_problems(page: Path, text: str) -> list[str]:
    """Each link or bare URL of a Markdown page that leaves the repository or is broken."""
    body = prose(text)
    found: dict[int, str] = {}  # offset -> problem
    reported: list[range] = []

    for pattern in (INLINE_LINK, REFERENCE_DEFINITION, AUTOLINK, HTML_TARGET):
        for match in pattern.finditer(body):
            problem = target_problem(page, match.group(1))
            if problem:
                found[match.start(1)] = f"{match.group(1).strip('<>')} {problem}"
                reported.append(range(match.start(), match.end()))
    for match in BARE_URL.finditer(body):
        if not any(match.start() in span for span in reported):
            found[match.start()] = f"{match.group().rstrip('.,;:')} is a URL in prose"
    return [f"line {body.count(chr(10), 0, at) + 1}: {found[at]}" for at in sorted(found)]


def pages() -> list[Path]:
    return sorted({page for pattern in PAGE_GLOBS for page in ROOT.glob(pattern)})


def test_pages_link_only_inside_the_repository() -> None:
    found = {}
    for page in pages():
        problems = link_problems(page, page.read_text())
        if problems:
            found[str(page.relative_to(ROOT))] = problems
    assert found == {}
    names = {str(page.relative_to(ROOT)) for page in pages()}
    assert {"README.md", "docs/explanation/architecture.md"} <= names


def test_link_problems_finds_what_leaves_or_breaks() -> None:
    page = ROOT / "docs" / "howto" / "example.md"
    text = "\n".join(
        [
            "[web](https://example.org/a) and ![img](http://example.org/i.png)",  # 1
            "[ok](../reference/config.md#hub) [anchor](#steps) [dir](../../tests)",  # 2
            "[missing](no-such-page.md) [outside](../../../elsewhere/DESIGN.md)",  # 3
            "[abs](/etc/passwd) <https://example.org/auto> see https://example.org/bare.",  # 4
            "[ref]: https://example.org/ref",  # 5
            '<a href="mailto:x@example.org">mail</a>',  # 6
            "`https://in.code/span` and [`code text`](../reference/config.md)",  # 7
            "```bash",  # 8
            "curl https://in.a/fence",  # 9
            "[fenced](https://in.a/fence)",  # 10
            "```",  # 11
            "a ``span with ` inside https://x.org`` and a span",  # 12
            "over `two",  # 13
            "lines https://x.org` end; after https://after.org",  # 14
        ]
    )
    assert link_problems(page, text) == [
        "line 1: https://example.org/a links outside the repository",
        "line 1: http://example.org/i.png links outside the repository",
        "line 3: no-such-page.md points at nothing",
        "line 3: ../../../elsewhere/DESIGN.md points outside the repository",
        "line 4: /etc/passwd is an absolute path",
        "line 4: https://example.org/auto links outside the repository",
        "line 4: https://example.org/bare is a URL in prose",
        "line 5: https://example.org/ref links outside the repository",
        "line 6: mailto:x@example.org links outside the repository",
        "line 14: https://after.org is a URL in prose",
    ]
