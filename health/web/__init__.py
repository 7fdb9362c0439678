"""What people touch on a health node: the JSON API of the dashboard and apps, and the
dashboard's static files (``health.web.dashboard``)."""
