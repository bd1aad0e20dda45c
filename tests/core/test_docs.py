"""The reference docs stay true to the code: every module, command, option and cited test exists in both.

Each check reads the source tree and the docs at test time, so adding a module, a command or an option
without its line in the docs fails here, and so does a doc that cites a test which no longer exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from recurrentgpt.cli import cli


def _root() -> Path:
    """The repository root: the nearest folder above this file holding pyproject.toml (tests may move)."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise AssertionError("no pyproject.toml above the tests")


ROOT = _root()
PACKAGE = ROOT / "src" / "recurrentgpt"
DOCS = ROOT / "docs"
README_MAX_LINES = 200
README_MAX_LINE_CHARS = 200
BENCHMARKS_MAX_LINES = 400


def _code_spans(text: str) -> list[str]:
    """The inline code spans of a Markdown text (`like this`)."""
    return re.findall(r"`([^`\n]+)`", text)


# --- docs/architecture.md: every module --------------------------------------------------------------

def modules_missing_from(architecture: str, package: Path) -> list[str]:
    """The package's .py files (paths relative to the package) that the page never names as `path`."""
    named = set(_code_spans(architecture))
    modules = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py"))
    return [m for m in modules if m not in named]


def test_architecture_names_every_module():
    missing = modules_missing_from((DOCS / "architecture.md").read_text("utf-8"), PACKAGE)
    assert not missing, f"docs/architecture.md does not name these modules (add a line each): {missing}"


def test_the_architecture_check_fails_when_a_module_is_missing(tmp_path):
    (tmp_path / "loom").mkdir()
    for name in ("__init__.py", "cell.py", "loom/__init__.py", "loom/facade.py"):
        (tmp_path / name).write_text("")
    page = "| `__init__.py` | … |\n| `cell.py` | … |\n| `loom/__init__.py` | … |\n"
    assert modules_missing_from(page, tmp_path) == ["loom/facade.py"]
    # a module is named by its path: `facade.py` alone, or a path inside a longer span, does not count
    elsewhere = "`facade.py` and `src/recurrentgpt/loom/facade.py`"
    assert modules_missing_from(page + elsewhere, tmp_path) == ["loom/facade.py"]
    assert modules_missing_from(page + "| `loom/facade.py` | the Loom |", tmp_path) == []


# --- docs/cli.md: every command and option -----------------------------------------------------------

def command_tree(group: click.Group) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under ``group`` with its path of names, subcommands included (depth first)."""
    found = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(sub, path + (name,))

    walk(group, ())
    return found


def _command_words(span: str) -> tuple[str, ...]:
    """A code span's command words: `recurrentgpt bible STORY add NAME` -> ('bible', 'add'). Placeholders
    (STORY, [NODE], NAMES...) and options are not command words; a span whose first word is not a command
    word names no command."""
    words = span.split()
    if words and words[0] == "recurrentgpt":
        words = words[1:]
    out = []
    for word in words:
        if word.startswith("-"):
            break
        if re.fullmatch(r"\[?[A-Z][A-Z_]*\]?(\.\.\.)?|\[[A-Z_]+\]\.\.\.", word):
            continue
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        out.append(word)
    return tuple(out)


def cli_doc_gaps(page: str, group: click.Group) -> tuple[list[str], list[str]]:
    """(commands, options) of ``group`` that the page does not document. A command is documented by a code
    span whose command words start with its path (`bible STORY add NAME` documents `bible add`); an option by
    its long name standing alone (`--plan-check` does not count for `--plan`)."""
    documented = {_command_words(span) for span in _code_spans(page)}
    commands, options = [], []
    for path, command in command_tree(group):
        if path and not any(words[: len(path)] == path for words in documented):
            commands.append(" ".join(path))
        for param in command.params:
            for opt in [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]:
                if opt.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", page):
                    options.append(f"{' '.join(('recurrentgpt', *path))} {opt}")
    return commands, options


def test_cli_doc_names_every_command_and_option():
    commands, options = cli_doc_gaps((DOCS / "cli.md").read_text("utf-8"), cli)
    assert not commands, f"docs/cli.md does not document these commands: {commands}"
    assert not options, f"docs/cli.md does not document these options: {options}"


def test_the_cli_check_walks_the_real_command_tree():
    paths = {path for path, _ in command_tree(cli)}
    assert {("step",), ("bible", "add"), ("config", "set"), ("eval",)} <= paths
    assert len(paths) > 30


def test_the_cli_check_fails_on_a_missing_command_or_option():
    @click.group()
    def demo_cli():
        """A stand-in CLI."""

    @demo_cli.group()
    def bible():
        """Entries."""

    @bible.command()
    @click.option("--kind")
    @click.option("--pin/--no-pin")
    def add(kind, pin):
        """Add."""

    @demo_cli.command()
    @click.option("--plan", "-p")
    def step(plan):
        """Step."""

    full = "`bible STORY`; `bible STORY add NAME`: `--kind`, `--pin / --no-pin`. `recurrentgpt step STORY`: `--plan`."
    assert cli_doc_gaps(full, demo_cli) == ([], [])
    assert cli_doc_gaps(full.replace("`bible STORY add NAME`", "`bible STORY`"), demo_cli)[0] == ["bible add"]
    assert cli_doc_gaps(full.replace("`--plan`", "`--plan-check`"), demo_cli)[1] == ["recurrentgpt step --plan"]
    assert cli_doc_gaps(full.replace(" / --no-pin", ""), demo_cli)[1] == ["recurrentgpt bible add --no-pin"]


# --- docs/evaluation.md: every evaluated system in its one table ------------------------------------

def system_doc_gaps(evaluation: str, cli_page: str, against_help: str, systems: list[str]) -> dict[str, list[str]]:
    """Where the evaluated systems and their docs disagree: systems without a row (`| `name` | … |`) in the
    evaluation page's table, rows naming no system, and systems missing from `--against` in cli.md and in the
    option's help."""
    rows = re.findall(r"^\| `([a-z][a-z-]*)` \|", evaluation, flags=re.MULTILINE)
    against_row = next((line for line in cli_page.splitlines() if line.startswith("| `--against")), "")
    help_names = set(re.findall(r"[a-z][a-z-]*", against_help))
    return {"no row in evaluation.md": [s for s in systems if s not in rows],
            "a row but no such system": [r for r in rows if r not in systems],
            "not in cli.md's --against": [s for s in systems if f"`{s}`" not in against_row],
            "not in --against's help": [s for s in systems if s not in help_names]}


def _against_help() -> str:
    command = cli.commands["eval"]
    return next(p.help or "" for p in command.params if p.name == "against")


def test_the_evaluation_page_lists_every_system_in_one_table():
    from recurrentgpt.evaluation.systems import SYSTEMS

    gaps = system_doc_gaps((DOCS / "evaluation.md").read_text("utf-8"), (DOCS / "cli.md").read_text("utf-8"),
                           _against_help(), list(SYSTEMS))
    assert not any(gaps.values()), f"the evaluated systems and their docs disagree: {gaps}"


def test_the_system_check_fails_on_a_missing_or_stale_row():
    table = "| system | what |\n|---|---|\n| `recurrentgpt` | it |\n| `rolling` | the baseline |\n"
    cli_row = "| `--against TEXT` | comma-separated: `rolling`, `recurrentgpt` |"
    systems = ["recurrentgpt", "rolling"]
    assert not any(system_doc_gaps(table, cli_row, "rolling, recurrentgpt.", systems).values())
    gaps = system_doc_gaps(table, cli_row, "rolling, recurrentgpt.", [*systems, "no-plans"])
    assert gaps == {"no row in evaluation.md": ["no-plans"], "a row but no such system": [],
                    "not in cli.md's --against": ["no-plans"], "not in --against's help": ["no-plans"]}
    assert system_doc_gaps(table, cli_row, "rolling, recurrentgpt.", ["recurrentgpt"])["a row but no such system"] == [
        "rolling"]


# --- docs/reliability.md: every test it cites exists ---------------------------------------------------

def _tests_in(tests: Path) -> tuple[set[str], set[str]]:
    """(test function names, test module names) under ``tests``, wherever the suite keeps them."""
    functions, modules = set(), set()
    for path in tests.rglob("test_*.py"):
        modules.add(path.stem)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                functions.add(node.name)
    return functions, modules



def cited_but_missing(page: str, functions: set[str], modules: set[str]) -> list[str]:
    """The tests a page cites (`test_x`, `tests/…/test_x.py`, `tests/test_x.py::test_y`) that do not exist."""
    missing = []
    for name in sorted(set(re.findall(r"\btest_\w+\.py\b", page))):
        if name[:-3] not in modules:
            missing.append(name)
    for name in sorted(set(re.findall(r"\btest_\w+\b(?!\.py)", page))):
        if name not in functions and name not in modules:
            missing.append(name)
    return missing


def test_every_test_the_reliability_page_cites_exists():
    functions, modules = _tests_in(ROOT / "tests")
    missing = cited_but_missing((DOCS / "reliability.md").read_text("utf-8"), functions, modules)
    assert not missing, f"docs/reliability.md cites tests that do not exist: {missing}"


def test_the_citation_check_fails_on_a_test_that_does_not_exist():
    functions, modules = {"test_a_crash_rolls_back", "test_retries"}, {"test_loom", "test_q8_copy"}
    page = "`tests/test_loom.py::test_a_crash_rolls_back`, `test_retries`, `tests/test_q8_copy.py` (6 tests)"
    assert cited_but_missing(page, functions, modules) == []
    assert cited_but_missing(page.replace("test_retries", "test_retries_forever"), functions, modules) == [
        "test_retries_forever"]
    assert cited_but_missing(page.replace("test_q8_copy.py", "test_q4_copy.py"), functions, modules) == [
        "test_q4_copy.py"]


def missing_test_files(page: str, root: Path) -> list[str]:
    """The test files a page names by path (`tests/loom/test_loom.py`) that are not there."""
    return sorted({p for p in re.findall(r"\btests/[\w/]*test_\w+\.py", page) if not (root / p).is_file()})


def test_every_test_file_the_docs_name_by_path_exists():
    pages = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted(DOCS.glob("*.md"))]
    missing = {page.name: m for page in pages if (m := missing_test_files(page.read_text("utf-8"), ROOT))}
    assert not missing, f"the docs name test files that are not there (moved?): {missing}"


def test_the_test_file_check_fails_on_a_moved_file(tmp_path):
    (tmp_path / "tests" / "loom").mkdir(parents=True)
    (tmp_path / "tests" / "loom" / "test_loom.py").write_text("")
    assert missing_test_files("`tests/loom/test_loom.py::test_x`", tmp_path) == []
    assert missing_test_files("`tests/test_loom.py::test_x`", tmp_path) == ["tests/test_loom.py"]


# --- sizes: README and BENCHMARKS ----------------------------------------------------------------------

def long_lines(markdown: str, limit: int) -> list[int]:
    """Line numbers of lines longer than ``limit`` characters, fenced code blocks excluded (prose, lists,
    headings and table rows are all checked)."""
    out, fenced = [], False
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced and len(line) > limit:
            out.append(number)
    return out


def test_the_readme_is_short_and_its_lines_are_readable():
    readme = (ROOT / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES, "README.md is a short introduction: move details to docs/"
    assert not long_lines(readme, README_MAX_LINE_CHARS), f"README.md lines over {README_MAX_LINE_CHARS} characters"


def test_the_line_check_skips_code_blocks_only():
    text = "short\n" + "x" * 201 + "\n```\n" + "y" * 300 + "\n```\n| " + "z" * 250 + " |\n"
    assert long_lines(text, 200) == [2, 6]


def test_benchmarks_is_a_reference_not_a_notebook():
    benchmarks = (ROOT / "BENCHMARKS.md").read_text("utf-8")
    assert len(benchmarks.splitlines()) <= BENCHMARKS_MAX_LINES, "BENCHMARKS.md: one short section per question"


# --- links between the docs ----------------------------------------------------------------------------

def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown page whose file, or whose #anchor in a Markdown file, does not exist."""
    broken = []
    for target, fragment in re.findall(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", page.read_text("utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path = (page.parent / target) if target else page
        if not path.exists():
            broken.append(target)
        elif fragment and path.suffix == ".md":
            headings = [line.lstrip("#") for line in path.read_text("utf-8").splitlines() if line.startswith("#")]
            if fragment[1:] not in {_anchor(h) for h in headings}:
                broken.append(target + fragment)
    return broken


def test_links_between_the_docs_resolve():
    pages = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]
    broken = {page.relative_to(ROOT).as_posix(): b for page in pages if (b := broken_links(page))}
    assert not broken, f"links to files or headings that do not exist: {broken}"


def test_the_link_check_fails_on_a_missing_file_or_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## The web studio under load\n")
    page = tmp_path / "b.md"
    page.write_text("[a](a.md) [b](a.md#the-web-studio-under-load) [c](https://example.org/x)\n")
    assert broken_links(page) == []
    page.write_text("[a](missing.md) [b](a.md#the-web-studio) [c](#top)\n")
    assert broken_links(page) == ["missing.md", "a.md#the-web-studio", "#top"]


# --- source comments say why, not where a figure came from ---------------------------------------------

NOTEBOOK_CITATION = re.compile(r"§ ?[0-9]|\brun [0-9]+|BENCHMARKS")


def notebook_citations(package: Path) -> list[str]:
    """Lines of the package's source that cite a benchmark section, a run or BENCHMARKS.md."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if NOTEBOOK_CITATION.search(line):
                found.append(f"{rel}:{number}")
    return found


def test_source_comments_cite_no_benchmark_section_or_run():
    found = notebook_citations(PACKAGE)
    assert not found, f"say why in a sentence; figures live in the docs: {found}"


def test_the_citation_scan_finds_sections_runs_and_the_notebook(tmp_path):
    (tmp_path / "a.py").write_text("x = 1  # 2.3x faster (BENCHMARKS §3a)\ny = 2  # a dry run\n")
    (tmp_path / "b.py").write_text('"""Measured in run 13."""\nz = 3  # see § 12\n')
    assert notebook_citations(tmp_path) == ["a.py:1", "b.py:1", "b.py:2"]
