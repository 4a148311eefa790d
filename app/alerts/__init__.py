"""Alerts: what a published run found that needs attention, told to the area's subscribers.

events.py makes the events inside the publishing transaction, subscriptions.py keeps who is
told where, deliver.py sends what is due (webhook.py, mail.py) and retries what failed.
"""
