"""Who is calling, what they may see, and the audit trail of what they did."""
