"""Compliance for study coordinators: participant x day adherence states, the re-consent ledger, alerts."""
