"""Node 3's inference API: serves the registry's champion pipeline; never imports training code."""
