"""Anthropic: capabilities, the breakpoint allocator, Message Batches."""
