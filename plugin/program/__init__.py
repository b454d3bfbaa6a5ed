"""The form journey (issue 9, docs/program.md): a staged retraining program per runner, and their shoes.

======================  ==========================================================================================
``assessment``          the starting assessment from the last 4 weeks (pooled like every trend)
``stages``              the stages, their rules and plain-words texts with sources; the replay over the runs
``shoes``               per-pair comparison against the runner's baseline, mileage, the new-pair alert
``journey``             the journey document the dashboard shows, and the agent's target from it
``service``             wiring: start/change a program, on every run tag, alert, push, publish the target
======================  ==========================================================================================
"""

from plugin.program.assessment import AssessmentError, assess
from plugin.program.journey import journey, program_target
from plugin.program.service import ProgramService, RunOutcome

__all__ = ["AssessmentError", "ProgramService", "RunOutcome", "assess", "journey", "program_target"]
