"""admin routes (filled in by the incidents API work)."""

from app.web.api import blueprint as blueprint
