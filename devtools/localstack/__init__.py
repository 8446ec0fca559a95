"""The local stack: template.yaml run on this machine against moto in server mode, no AWS account, no Docker."""
