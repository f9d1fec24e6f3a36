"""`ctx.report`: what was read, what was kept, and what was skipped with file:line and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Issue


@dataclass
class FileReport:
    path: str
    format: str | None = None
    sessions: list[str] = field(default_factory=list)
    records_kept: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def records_skipped(self) -> int:
        return sum(1 for i in self.issues if i.kind in ("malformed", "truncated"))


@dataclass
class LoadReport:
    files: list[FileReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def issues(self) -> list[Issue]:
        return [i for f in self.files for i in f.issues]

    @property
    def skipped(self) -> list[Issue]:
        """Records that were not loaded (malformed or cut-off lines)."""
        return [i for i in self.issues if i.kind in ("malformed", "truncated")]

    @property
    def unreadable(self) -> list[Issue]:
        """Files that could not be read at all (broken links, named pipes, permissions, gone since listed)."""
        return [i for i in self.issues if i.kind == "unreadable"]

    def summary(self) -> str:
        kept = sum(f.records_kept for f in self.files)
        formats = sorted({f.format for f in self.files if f.format})
        bad = len(self.unreadable)
        notes = len(self.issues) - len(self.skipped) - bad + len(self.notes)
        return (
            f"{len(self.files) - bad} file(s) [{', '.join(formats) or 'none'}], {kept:,} records kept, "
            f"{len(self.skipped)} skipped, " + (f"{bad} file(s) unreadable, " if bad else "") + f"{notes} note(s)"
        )

    def __repr__(self) -> str:
        lines = [f"LoadReport: {self.summary()}"]
        for f in self.files:
            lines.append(
                f"  {f.path}  [{f.format or '?'}]  sessions={len(f.sessions)} kept={f.records_kept}"
                f" skipped={f.records_skipped}"
            )
            for i in f.issues[:20]:
                lines.append(f"    {i.kind}: {i.where()}: {i.reason}")
            if len(f.issues) > 20:
                lines.append(f"    … {len(f.issues) - 20} more")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "files": [
                {
                    "path": f.path,
                    "format": f.format,
                    "sessions": f.sessions,
                    "records_kept": f.records_kept,
                    "records_skipped": f.records_skipped,
                    "issues": [
                        {
                            "kind": i.kind,
                            "where": i.where(),
                            "line": i.line,
                            "reason": i.reason,
                            **({"path": i.path} if i.path != f.path else {}),
                            **({"pointer": i.pointer} if i.pointer else {}),
                        }
                        for i in f.issues
                    ],
                }
                for f in self.files
            ],
            "notes": self.notes,
        }
