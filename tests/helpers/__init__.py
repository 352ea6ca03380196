"""What tests share: fakes of Discord and the LLM, story factories, process helpers."""
