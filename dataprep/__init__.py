"""Dataset preparation: real and generated faces through one face crop, matched, split, probed.

``python -m dataprep build`` combines every source into ``data/<name>/{train,val,test}/
{real,fake}/`` with a manifest; ``python -m dataprep stats`` and ``python -m dataprep probes``
measure per class and source what could separate the classes other than how an image was made.
``python -m dataprep.gan`` renders the generated GAN faces that the build combines.
"""
