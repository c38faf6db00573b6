"""The bundled GPT trainer, arriving with issue 8."""
