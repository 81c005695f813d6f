"""Quotes for every stage and the budget that caps what an approval allows."""
