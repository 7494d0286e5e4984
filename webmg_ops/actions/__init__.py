"""One module per action: which playbook it runs and what its run proves.

Each action module ends with ``ACTION``, an :class:`~webmg_ops.actions.base.Action`
naming its playbook and its hooks: ``make_outcome(result, preflight, before)``
turns the play's result into evidence, residual risks and next steps;
optionally ``make_extra_vars(client, hosts, request, vault=...)`` (the play's
extra vars, from the contract and policy; BadInput for a request the policy
forbids), ``plan_batches(client, hosts)`` (the batches in which hosts are
changed, as ``plan`` shows them) and ``before_play(context, hosts)`` (what the
action measures before the play; handed to ``make_outcome``). An action that
works on the controller alone (a restore drill) has no playbook and
``run_on_controller(context) -> ControllerDone`` instead; no preflight of the
client's hosts runs for it. Actions print nothing and write no ledger entry:
they return what the engine records. :mod:`~webmg_ops.actions.registry`
finds an action by name.
"""
