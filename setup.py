"""The wheel carries the service's files inside the package.

``static/``, ``templates/``, ``migrations/`` and the demo ``cookies.yaml`` sit at
the top of the repository; a built package holds them under ``consent/``, where
``consent.resources`` looks first. An editable install reads them where they are.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FILES = ("static", "templates", "migrations", "cookies.yaml")


class BuildWithFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        here = Path(__file__).resolve().parent
        package = Path(self.build_lib) / "consent"
        for name in FILES:
            source, target = here / name, package / name
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)


setup(cmdclass={"build_py": BuildWithFiles})
