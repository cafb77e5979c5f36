"""`evalplatform judges`: the project's judges with their last calibration and whether they may gate."""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS


@click.command("judges")
@click.option("--suite", help="only the judges of this suite")
def command(suite: str | None) -> int:
    """List the judges of the project's suites with their last calibration and whether they may gate."""
    from evalplatform.history import HistoryStore
    from evalplatform.judges.calibrate import gate_status
    from evalplatform.judges.suites import project_judges
    from evalplatform.project import find_project

    project = find_project()
    store = HistoryStore(project.history_path)
    judges = project_judges(project, suite)
    if not judges:
        output.echo("no judge scorers in the project's suites")
        return EXIT_PASS
    rows = []
    for name, judge in judges:
        st = gate_status(store, judge)
        cal = st.calibration or {}
        when = f"{cal['created_at']:%Y-%m-%d %H:%M}" if cal else "never"
        gate = "allowed" if st.allowed else f"{st.status.upper()}: {'; '.join(st.reasons)}"
        rows.append((name, judge.id, judge.judge_name, when, output.number(cal.get("fail_recall_lb")),
                     output.number(cal.get("kappa_lb")), gate))

    def plain() -> str:
        lines = [f"{'suite':<10}{'scorer':<20}{'judge':<44}{'calibrated':<18}{'recall LB':>10}{'kappa LB':>10}  gate"]
        lines += [f"{s:<10}{scorer:<20}{judge[:43]:<44}{when:<18}{recall:>10}{kappa:>10}  {gate}"
                  for s, scorer, judge, when, recall, kappa, gate in rows]
        return "\n".join(lines)

    output.show(plain, lambda: output.table(["suite", "scorer", "judge", "calibrated", ("recall LB", "right"),
                                             ("kappa LB", "right"), "gate"], rows,
                                            wrap=["judge", "gate"]))
    return EXIT_PASS
