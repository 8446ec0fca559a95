"""Development tools: read template.yaml, emulate Lambda's stream event-source mappings on moto."""
