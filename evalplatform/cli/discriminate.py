"""`evalplatform discriminate`: how much worse must a model get before the suite's policy notices?"""

from __future__ import annotations

import click

from evalplatform.cli import output
from evalplatform.errors import EXIT_PASS, InputError


def _fractions(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(None, "--fractions", f"expected numbers like 0.05,0.1,0.2, got {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise InputError(None, "--fractions", "each fraction is in (0, 1]")
    return values


@click.command("discriminate")
@click.option("--suite", required=True, help="the suite whose policy is measured")
@click.option("--run", "run_id", metavar="RUN_ID", help="the recorded run to degrade (default: the promoted baseline)")
@click.option("--fractions", default="0.02,0.05,0.1,0.2", show_default=True,
              help="shares of passing outputs flipped to failing, per category")
@click.option("--draws", type=click.IntRange(min=5, max=2000), default=40, show_default=True,
              help="degraded copies per fraction")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the degradations")
def command(suite: str, run_id: str | None, fractions: str, draws: int, seed: int) -> int:
    """Inject known degradations into a recorded run's outputs (flip a fraction of passing outputs per category,
    and the suite's mutators) and report, per fraction, the share the policy blocks with an interval: the suite's
    discrimination score, stored in the history. A suite at 100% on its baseline is told it cannot see above it."""
    from evalplatform.discrimination import discriminate, discrimination_check, discrimination_table
    from evalplatform.project import find_project

    result = discriminate(find_project(), suite, run_id=run_id, fractions=_fractions(fractions), draws=draws,
                          seed=seed)
    output.echo(discrimination_table(result))
    passed, text = discrimination_check(result)
    output.echo(("" if passed else "advisory: ") + text)
    return EXIT_PASS
