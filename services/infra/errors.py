"""The errors of the local services' provisioning, apart from the code that raises them.

`knobs` catches these at start-up; here they cost nothing to import (llm.py loads httpx and
pydantic-settings).
"""

from __future__ import annotations


class Neo4jProvisioningError(RuntimeError):
    """Neo4j could not be installed, started or stopped; the message says what to do."""


class LLMProvisioningError(RuntimeError):
    """The local LLM server could not be found, started or stopped; the message says what to do."""


class LLMNotConfigured(RuntimeError):
    """No LLM server is configured or running for this home; the message says what to do."""
