"""The trial mailbox: the e-mails kept on the machine, their links to the service clickable and
nothing else; served only in trial mode, to the machine itself."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.common.http import Problem
from services.common.settings import Settings
from services.notifier.channels import Email, LocalMailbox
from services.notifier.mailbox import kept_emails, linked, trial_only

BASE = "http://127.0.0.1:8000"


def test_the_kept_emails_are_listed_newest_first_with_their_links(tmp_path: Path) -> None:
    box = LocalMailbox(tmp_path, "SAS <sas@localhost>")
    asyncio.run(box.send(Email("dr@example.org", "Première", f"Voir {BASE}/o/abc.\nAilleurs : https://evil.example/x")))
    asyncio.run(box.send(Email("dr2@example.org", "Seconde <b>", "Rien <script>")))
    (tmp_path / "not-mail.txt").write_text("ignored")
    for path in tmp_path.glob("*.eml"):  # the first one sent an hour earlier
        at = 1_000_000 if b"Premi" in path.read_bytes() else 1_003_600
        os.utime(path, (at, at))
    emails = kept_emails(tmp_path, BASE)
    assert [e.to for e in emails] == ["dr2@example.org", "dr@example.org"]
    shown = {e.subject: str(e.body) for e in emails}
    assert f'<a href="{BASE}/o/abc">{BASE}/o/abc</a>.' in shown["Première"]
    assert 'href="https://evil' not in shown["Première"]  # only the service's own links are links
    assert "&lt;script&gt;" in shown["Seconde <b>"]
    assert kept_emails(tmp_path / "none", BASE) == []


def test_only_the_services_own_links_are_made_clickable() -> None:
    text = str(linked(f"a {BASE}/o/t1, b {BASE}.evil.example/o/t2 c", BASE))
    assert text.count("<a ") == 1 and f'href="{BASE}/o/t1"' in text


@pytest.mark.parametrize(
    ("smtp_host", "client", "served"),
    [
        (None, "127.0.0.1", True),
        (None, "::1", True),
        ("smtp.example.org", "127.0.0.1", False),
        (None, "10.0.0.5", False),
        (None, "testclient", False),
    ],
)
def test_the_mailbox_is_served_in_trial_mode_to_the_machine_itself_only(
    smtp_host: str | None, client: str, served: bool
) -> None:
    settings = Settings(secret_key="s", smtp_host=smtp_host)
    request = SimpleNamespace(client=SimpleNamespace(host=client))
    if served:
        trial_only(request, settings)  # type: ignore[arg-type]
    else:
        with pytest.raises(Problem):
            trial_only(request, settings)  # type: ignore[arg-type]
