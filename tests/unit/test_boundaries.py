"""House rules read from the code.

Services talk through Kafka (and the notifier asks the intake for a contact over HTTP), never
through each other's code: no module of one service imports another's; `services/common` imports
none. Only the composition root (`services/main.py`) sees them all. And no function is long."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
NAMES = ("intake", "matcher", "notifier", "ops")


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def crossings(owner: str, allowed: set[str]) -> list[str]:
    found = []
    for path in sorted((SERVICES / owner).rglob("*.py")):
        for module in imported(path):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] in NAMES and parts[1] not in allowed:
                found.append(f"{path.relative_to(SERVICES.parent)} imports {module}")
    return found


def test_no_service_imports_another_service_s_modules() -> None:
    found = [line for name in NAMES for line in crossings(name, {name})]
    assert found == []


def test_the_shared_code_imports_no_service() -> None:
    assert crossings("common", set()) == []


def test_the_check_sees_a_crossing() -> None:
    """The check itself: the composition root imports every service."""
    root = {m for m in imported(SERVICES / "main.py") if m.startswith("services.")}
    assert {f"services.{name}" for name in NAMES} <= {".".join(m.split(".")[:2]) for m in root}


MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_a_screen() -> None:
    """Readable in an afternoon: no function of services/ over 60 lines (migrations included)."""
    long = []
    for path in sorted(SERVICES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SERVICES.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200


def test_no_module_or_class_is_too_long_to_read_at_once() -> None:
    """No module of services/ over 400 lines, no class over 200: a part that grows past them is
    split where its concerns part (see the matcher's packages)."""
    long = []
    for path in sorted(SERVICES.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(SERVICES.parent)
        if len(source.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{where} ({len(source.splitlines())} lines)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_CLASS_LINES:
                long.append(
                    f"{where}:{node.lineno} class {node.name} ({(node.end_lineno or 0) - node.lineno + 1} lines)"
                )
    assert long == []
