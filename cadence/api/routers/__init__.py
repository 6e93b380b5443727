"""One router per resource; endpoints stay thin and call the engine's services."""
