"""``transferscope demo``: the main job, every part on the embedded defaults, one report."""
