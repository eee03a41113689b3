"""Governed model access: providers, the embedded runtime, policy, guardrails, ledger,
audit, the Gateway and its OpenAI-compatible proxy."""
