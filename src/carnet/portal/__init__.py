"""The portals for patients, professionals and the agency: server-rendered pages."""
