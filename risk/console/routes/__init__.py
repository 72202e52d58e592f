"""The console's routes: pages for officers, the JSON API for machine clients."""
