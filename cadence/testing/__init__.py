"""Test helpers shipped with Cadence: private Dovecot and SMTP servers, certificates."""
