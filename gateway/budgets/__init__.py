"""Budgets: the policies covering a request and the reserve-then-settle protocol (policies), the counters
behind them (backends: memory; database; redis; allowance in front of a shared one) and the alerts."""
