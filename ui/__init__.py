"""The pages: the NiceGUI web app people use (drawing with its Number mode, stats, the admin page with its review
queue), its widgets and the page's JSON API. It draws and calls app/ only, never db or serving; its settings are
settings.py's."""
