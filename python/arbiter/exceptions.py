"""The exceptions of ``run_tasks`` (``arbiter.runner``) under the names
invenia's Arbiter gave them: a task's ``Result.value`` when it could not
run at all."""

from .errors import ArbiterError


class DependencyError(ArbiterError):
    """A task did not run because of its dependencies."""


class FailedDependencyError(DependencyError):
    """A task did not run: a task it depends on failed (or did not run)."""


class UnsatisfiedDependencyError(DependencyError):
    """A task did not run: it depends on a task that is not in the list, or
    on itself through others (a cycle)."""


__all__ = ['DependencyError', 'FailedDependencyError', 'UnsatisfiedDependencyError']
