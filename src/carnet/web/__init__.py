"""The HTTP way in: the application factory, the portal pages and the service endpoints."""
