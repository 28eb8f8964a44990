"""One error tree for graph/; driver errors are translated here, messages say what to do.

The tree itself imports nothing: `knobs` catches GraphError at start-up, and importing the
driver (neo4j.exceptions loads most of it) waits for the code that talks to Neo4j.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class GraphError(Exception):
    """Base of every error raised by graph/."""


class GraphUnavailable(GraphError):
    """Neo4j cannot be reached, or refused our credentials."""


class QueryRefused(GraphError):
    """The read-only gate refused a query before it ran; the message says why."""


class QueryFailed(GraphError):
    """Neo4j rejected or aborted a query (syntax error, timeout, ...)."""


class UnknownQuery(GraphError):
    """No named query of that name exists in graph/queries."""


class ProjectionFailed(GraphError):
    """The projector could not apply an event; the checkpoint was not advanced past it."""


class RebuildInProgress(ProjectionFailed):
    """The graph is being rebuilt (or a rebuild was interrupted); nothing may project meanwhile."""


def unavailable_message(exc: BaseException) -> str:
    from neo4j.exceptions import AuthError

    if isinstance(exc, AuthError):
        return (
            f"Neo4j refused the credentials ({exc.message}): set KNOBS_NEO4J_USER and "
            "KNOBS_NEO4J_PASSWORD (or let `knobs services up` start a Neo4j of its own)"
        )
    return (
        f"cannot reach Neo4j ({exc}): start it with `knobs services up`, "
        "or point KNOBS_NEO4J_URI at a running Neo4j"
    )


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn the driver's connection errors into GraphUnavailable and other errors into QueryFailed.

    `what` names the operation for the message ("projecting events", "reading the checkpoint").
    Errors of our own tree pass through untouched.
    """
    from neo4j.exceptions import (
        AuthError,
        ConfigurationError,
        DriverError,
        Neo4jError,
        ServiceUnavailable,
        SessionExpired,
    )

    try:
        yield
    except GraphError:
        raise
    except (ServiceUnavailable, SessionExpired, AuthError) as exc:
        raise GraphUnavailable(unavailable_message(exc)) from exc
    except Neo4jError as exc:
        raise QueryFailed(f"{what} failed in Neo4j: {exc.code}: {exc.message}") from exc
    except ConfigurationError as exc:
        raise GraphUnavailable(
            f"{what}: the Neo4j driver is misconfigured ({exc}); check KNOBS_NEO4J_*"
        ) from exc
    except DriverError as exc:
        raise GraphError(f"{what}: the Neo4j driver failed: {exc}") from exc
