"""Classroom mode: one facilitator's gateway serves a room of attendees.

Facilitator: :mod:`workbench.classroom.roster` (keys, revoke, live view),
:mod:`workbench.classroom.sheet` (the 0600 sheets), :mod:`workbench.classroom.routes`
(the gateway's classroom routes). Attendee: :mod:`workbench.classroom.attendee`
(``workbench join`` / ``leave`` and the ``classroom`` profile),
:mod:`workbench.classroom.client` (talking to the facilitator's gateway).
"""

__all__: list[str] = []
