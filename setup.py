"Packaging for lottery_fastai: every setting is read from settings.ini (the nbdev 2 convention)."
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
reqs, dev_reqs = cfg.get('requirements', '').split(), cfg.get('dev_requirements', '').split()
scripts = [s.strip() for s in cfg.get('console_scripts', '').split('\n') if s.strip()]

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license='Apache Software License 2.0', url=cfg['git_url'],
    keywords=cfg['keywords'], python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=[cfg['lib_name'], f"{cfg['lib_name']}.*"]),
    include_package_data=True, package_data={cfg['lib_name']: ['cli_help.json', 'cli_options.json']}, install_requires=reqs, extras_require={'dev': dev_reqs},
    entry_points={'console_scripts': scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
