"""What models cost and accept: the dated, sourced price table and reasoning allowances."""
